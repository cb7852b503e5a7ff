/* test_scoring.c: the scorers of tasks/scoring.c. Expected values were
   checked against the reference Python definitions (RULER evaluate.py and
   constants.py, SQuAD's normalize_answer) run on the same strings. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "scoring.h"

static void assert_contains(const char *text, const char *part) {
    if (!strstr(text, part)) fail_msg("expected \"%s\" in: %s", part, text);
}

static void expect_normalized(const char *input, int flags, const char *expected) {
    char *out = normalize_text(input, flags);
    assert_non_null(out);
    if (strcmp(out, expected) != 0) fail_msg("normalize_text(\"%s\", %d) = \"%s\", expected \"%s\"", input, flags, out, expected);
    free(out);
}

static void expect_postprocessed(const char *input, const char *expected) {
    char *out = ruler_postprocess(input);
    assert_non_null(out);
    assert_string_equal(out, expected);
    free(out);
}

/* ---------------------------------------------------------------- RULER */

static void test_ruler_postprocess(void **state) {
    (void)state;
    expect_postprocessed("  The answer is 123.\x01\x02  ", "The answer is 123.");
    expect_postprocessed("\tabc\x01" "def\n", "abc\ndef");         /* inner control character -> newline */
    expect_postprocessed("\x0b\x0c x \x1f", "x");
    expect_postprocessed("\xc2\xa0" "abc\xe3\x80\x80", "abc");      /* NBSP, ideographic space: Unicode strip */
    expect_postprocessed("a\x7f" "b", "a\x7f" "b");                 /* DEL is outside [\x00-\x1f] */
    expect_postprocessed("\x01\x02", "");
    expect_postprocessed("", "");
}

static void test_string_match_all_and_part_single_reference(void **state) {
    (void)state;
    char *refs[] = {"1234567"};
    assert_true(string_match_all("The special magic number is 1234567.", refs, 1) == 1.0);
    assert_true(string_match_part("The special magic number is 1234567.", refs, 1) == 1.0);
    assert_true(string_match_all("The special magic number is 1234568.", refs, 1) == 0.0);
    assert_true(string_match_part("", refs, 1) == 0.0);
}

static void test_string_match_is_case_insensitive(void **state) {
    (void)state;
    char *uuid[] = {"3b6f2a1c-9d4e-4c2b-8f1a-0e5d7c9b2a41"};
    assert_true(string_match_all("ANSWER: 3B6F2A1C-9D4E-4C2B-8F1A-0E5D7C9B2A41", uuid, 1) == 1.0);
    char *city[] = {"Zürich"};
    assert_true(string_match_all("the city is ZÜRICH", city, 1) == 1.0);
    assert_true(string_match_part("the city is ZÜRICH", city, 1) == 1.0);
}

/* RULER's niah_multivalue: four values, each counts a quarter. */
static void test_string_match_all_counts_each_reference(void **state) {
    (void)state;
    char *refs[] = {"1111111", "2222222", "3333333", "4444444"};
    const char *pred = "The special magic numbers are: 2222222, 4444444 and 1111111.";
    assert_true(string_match_all(pred, refs, 4) == 0.75);
    assert_true(string_match_part(pred, refs, 4) == 1.0);
    assert_true(string_match_all("none of them", refs, 4) == 0.0);
    assert_true(string_match_part("none of them", refs, 4) == 0.0);
}

/* RULER's QA scoring: references are alternative answers, so matching one
   is enough (string_match_part); the lm-eval port would give 0.5 here. */
static void test_string_match_part_differs_from_all_on_qa(void **state) {
    (void)state;
    char *refs[] = {"Denver Broncos", "the Broncos"};
    const char *pred = "The Broncos won the game.";
    assert_true(string_match_part(pred, refs, 2) == 1.0);
    assert_true(string_match_all(pred, refs, 2) == 0.5);
}

static void test_string_match_without_references_scores_zero(void **state) {
    (void)state;
    assert_true(string_match_all("anything", NULL, 0) == 0.0);
    assert_true(string_match_part("anything", NULL, 0) == 0.0);
}

/* ---------------------------------------------------------------- contains */

static void test_contains_case_sensitive(void **state) {
    (void)state;
    assert_true(text_contains("Paris is the capital", "Paris", 0));
    assert_false(text_contains("Paris is the capital", "paris", 0));
    assert_true(text_contains("anything", "", 0));  /* as Python's "" in s */
}

static void test_contains_nocase_with_accented_text(void **state) {
    (void)state;
    assert_true(text_contains("Le CAFÉ de PARIS", "café", 1));
    assert_false(text_contains("Le CAFÉ de PARIS", "café", 0));
    assert_true(text_contains("ÀÉÎÕÜ ÇÑ Ø Þ", "àéîõü çñ ø þ", 1));       /* Latin-1 Supplement */
    assert_true(text_contains("ŁÓDŹ and ŒUVRE, ĞÜNEŞ", "łódź and œuvre, ğüneş", 1));  /* Latin Extended-A */
    assert_true(text_contains("ŸES", "ÿes", 1));                          /* U+0178 pairs with U+00FF */
    assert_true(text_contains("МОСКВА", "москва", 1));                   /* basic Cyrillic */
    assert_true(text_contains("straße", "STRASSE", 1) == 0);             /* lower(), not casefold(): ß stays */
    /* Python lowers U+0130 to "i" + U+0307, so "istanbul" is not contained */
    assert_false(text_contains("İstanbul", "istanbul", 1));
    assert_true(text_contains("İstanbul", "stanbul", 1));
    /* outside the folded ranges text is compared as is (documented) */
    assert_false(text_contains("ΑΘΗΝΑ", "αθηνα", 1));
    assert_true(text_contains("ΑΘΗΝΑ", "ΑΘΗΝΑ", 1));
}

/* lm-eval's squad_completion `contains` is literal: regex metacharacters
   and punctuation in the gold value are plain characters. */
static void test_contains_is_literal(void **state) {
    (void)state;
    assert_true(text_contains("costs $4.50 (approx.)", "$4.50 (APPROX.)", 1));
    assert_false(text_contains("costs 4x50", "4.50", 1));
}

static void test_contains_tolerates_invalid_utf8(void **state) {
    (void)state;
    assert_true(text_contains("AB\xff\xfe" "CD", "b\xff\xfe" "c", 1));
    assert_true(text_contains("truncated \xc3", "TRUNCATED", 1));
}

/* ---------------------------------------------------------------- normalisation */

static void test_normalize_each_flag(void **state) {
    (void)state;
    expect_normalized("  The A, b!  ", NORM_NONE, "  The A, b!  ");
    expect_normalized("ÀB Ç Ÿ", NORM_LOWER, "àb ç ÿ");
    expect_normalized(" \t a b \n ", NORM_STRIP, "a b");
    expect_normalized(" a \t\n b  ", NORM_SPACES, " a b ");                /* collapses, does not trim */
    expect_normalized("a\xc2\xa0\xc2\xa0" "b", NORM_SPACES, "a b");          /* Unicode whitespace too */
    expect_normalized("a,b.c!?-(d)'e\"f_g", NORM_PUNCT, "abcdefg");
    expect_normalized("«x» — y", NORM_PUNCT, "«x» — y");                   /* only ASCII punctuation */
}

/* Each article becomes one space, as re.sub(r"\b(a|an|the)\b", " ", ...). */
static void test_normalize_articles(void **state) {
    (void)state;
    expect_normalized("the cat and a dog, an apple; theater", NORM_ARTICLES, "  cat and   dog,   apple; theater");
    expect_normalized("The a", NORM_ARTICLES, "The  ");                    /* case-sensitive without NORM_LOWER */
    expect_normalized("a_b", NORM_ARTICLES, "a_b");                        /* "_" is a word character */
    expect_normalized("l'a", NORM_ARTICLES, "l' ");
    expect_normalized("éa a", NORM_ARTICLES, "éa  ");                      /* é is a word character */
    expect_normalized("a—b", NORM_ARTICLES, " —b");                        /* the em dash is not */
    expect_normalized("a€", NORM_ARTICLES, " €");
    expect_normalized("x\xcc\x80" "a", NORM_ARTICLES, "x\xcc\x80 ");        /* nor is a combining mark */
}

static void test_normalize_squad(void **state) {
    (void)state;
    expect_normalized("  The   Quick, Brown-Fox!  ", NORM_SQUAD, "quick brownfox");
    expect_normalized("", NORM_SQUAD, "");
    expect_normalized("The the a an", NORM_SQUAD, "");
}

/* SQuAD normalisation deletes punctuation without a space, so a hyphen
   joins the words: "Eiffel-Tower" -> "eiffeltower" (as the reference). */
static void test_exact_match_with_squad_normalisation(void **state) {
    (void)state;
    assert_true(exact_match("The  Eiffel Tower!", "eiffel tower", NORM_SQUAD));
    assert_false(exact_match("The  Eiffel-Tower!", "eiffel tower", NORM_SQUAD));
    assert_true(exact_match("The  Eiffel-Tower!", "eiffeltower", NORM_SQUAD));
    assert_true(exact_match("An Eiffel tower.", "the eiffel TOWER", NORM_SQUAD));
    assert_false(exact_match("The Eiffel Tower", "eiffel tower", NORM_NONE));
    assert_true(exact_match("eiffel tower", "eiffel tower", NORM_NONE));
    assert_true(exact_match("  Paris \n", "paris", NORM_LOWER | NORM_STRIP));
}

/* ---------------------------------------------------------------- regular expressions */

static void test_regex_match(void **state) {
    (void)state;
    Err err = {{0}};
    assert_int_equal(regex_match("\\b\\d{7}\\b", "the number 1234567 is here", &err), 1);
    assert_int_equal(regex_match("\\b\\d{7}\\b", "the number 12345678 is here", &err), 0);
    assert_int_equal(regex_match("(?i)^paris$", "PARIS", &err), 1);
    assert_int_equal(regex_match("^paris$", "PARIS", &err), 0);
    assert_int_equal(regex_match("^.{4}$", "café", &err), 1);              /* UTF mode: code points, not bytes */
    assert_int_equal(regex_match("abc", "\xff abc", &err), 1);             /* invalid UTF-8 subject still matches */
    assert_int_equal(regex_match("x", "", &err), 0);
}

static void test_regex_bad_pattern_names_offset(void **state) {
    (void)state;
    Err err = {{0}};
    assert_int_equal(regex_match("abc(", "abc", &err), -1);
    assert_contains(err.msg, "\"abc(\"");
    assert_contains(err.msg, "offset 4");
    assert_contains(err.msg, "missing closing parenthesis");
    Err err2 = {{0}};
    assert_int_equal(regex_check("[a-", &err2), -1);
    assert_contains(err2.msg, "offset 3");
    assert_contains(err2.msg, "missing terminating ]");
    Err err3 = {{0}};
    assert_int_equal(regex_check("ab\xff", &err3), -1);                    /* a pattern must be valid UTF-8 */
    assert_contains(err3.msg, "offset 2");
    assert_int_equal(regex_check("^(?:yes|no)\\b", &err), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ruler_postprocess),
        cmocka_unit_test(test_string_match_all_and_part_single_reference),
        cmocka_unit_test(test_string_match_is_case_insensitive),
        cmocka_unit_test(test_string_match_all_counts_each_reference),
        cmocka_unit_test(test_string_match_part_differs_from_all_on_qa),
        cmocka_unit_test(test_string_match_without_references_scores_zero),
        cmocka_unit_test(test_contains_case_sensitive),
        cmocka_unit_test(test_contains_nocase_with_accented_text),
        cmocka_unit_test(test_contains_is_literal),
        cmocka_unit_test(test_contains_tolerates_invalid_utf8),
        cmocka_unit_test(test_normalize_each_flag),
        cmocka_unit_test(test_normalize_articles),
        cmocka_unit_test(test_normalize_squad),
        cmocka_unit_test(test_exact_match_with_squad_normalisation),
        cmocka_unit_test(test_regex_match),
        cmocka_unit_test(test_regex_bad_pattern_names_offset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
