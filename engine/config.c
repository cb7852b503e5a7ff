/* config.c: config.json → HymbaConfig, with every key checked.
   Keys that change the computation are required; metadata keys (auto_map,
   torch_dtype, ...) are optional. Values the official code accepts but
   hymeval does not implement are refused by name rather than ignored. */
#include "config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const cJSON *root;
    const char *where;
    Err *err;
} Reader;

static const cJSON *get(Reader *r, const char *key, int required) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(r->root, key);
    if (!item && required) err_set(r->err, "%s: missing key \"%s\"", r->where, key);
    return item;
}

/* Reads an integer key; returns -1 on error. */
static int get_int(Reader *r, const char *key, int required, int fallback, int *out) {
    const cJSON *item = get(r, key, required);
    if (!item) {
        if (required) return -1;
        *out = fallback;
        return 0;
    }
    if (!cJSON_IsNumber(item) || item->valuedouble != floor(item->valuedouble) ||
        fabs(item->valuedouble) > 2147483647.0)
        return err_set(r->err, "%s: key \"%s\" must be an integer", r->where, key);
    *out = (int)item->valuedouble;
    return 0;
}

static int get_num(Reader *r, const char *key, int required, double fallback, double *out) {
    const cJSON *item = get(r, key, required);
    if (!item) {
        if (required) return -1;
        *out = fallback;
        return 0;
    }
    if (!cJSON_IsNumber(item)) return err_set(r->err, "%s: key \"%s\" must be a number", r->where, key);
    *out = item->valuedouble;
    return 0;
}

static int get_bool(Reader *r, const char *key, int required, int fallback, int *out) {
    const cJSON *item = get(r, key, required);
    if (!item) {
        if (required) return -1;
        *out = fallback;
        return 0;
    }
    if (!cJSON_IsBool(item)) return err_set(r->err, "%s: key \"%s\" must be true or false", r->where, key);
    *out = cJSON_IsTrue(item);
    return 0;
}

/* Reads a string key into a static-lifetime pointer into the cJSON tree. */
static int get_str(Reader *r, const char *key, int required, const char *fallback, const char **out) {
    const cJSON *item = get(r, key, required);
    if (!item || cJSON_IsNull(item)) {
        if (required && !item) return -1;
        *out = fallback;
        return 0;
    }
    if (!cJSON_IsString(item)) return err_set(r->err, "%s: key \"%s\" must be a string", r->where, key);
    *out = item->valuestring;
    return 0;
}

static int positive(Reader *r, const char *key, int v) {
    if (v <= 0) return err_set(r->err, "%s: key \"%s\" must be positive (got %d)", r->where, key, v);
    return 0;
}

/* A JSON array of layer indices, each in [0, n_layers). */
static int read_layer_list(Reader *r, const cJSON *arr, const char *key, int n_layers, int *idx, int *count) {
    if (!cJSON_IsArray(arr)) return err_set(r->err, "%s: key \"%s\" must be a list of layer indices", r->where, key);
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < 0 ||
            e->valuedouble >= n_layers)
            return err_set(r->err, "%s: key \"%s\" holds %s, expected layer indices in [0, %d)", r->where, key,
                           cJSON_IsNumber(e) ? "an out-of-range index" : "a non-integer", n_layers);
        if (n >= HYMBA_MAX_LAYERS) return err_set(r->err, "%s: key \"%s\" is too long", r->where, key);
        idx[n++] = (int)e->valuedouble;
    }
    *count = n;
    return 0;
}

static int read_layer_kinds(Reader *r, HymbaConfig *c) {
    const cJSON *lt = get(r, "layer_type", 0);
    for (int l = 0; l < c->n_layers; l++) c->layer_kind[l] = LAYER_HYBRID;
    if (!lt || cJSON_IsNull(lt)) return 0;
    if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != c->n_layers)
        return err_set(r->err, "%s: key \"layer_type\" must be a list of %d strings (one per layer)", r->where,
                       c->n_layers);
    int l = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, lt) {
        const char *s = cJSON_IsString(e) ? e->valuestring : NULL;
        if (!s || strlen(s) != 1 || !strchr("ham", s[0]))
            return err_set(r->err,
                           "%s: key \"layer_type\"[%d] must be \"h\" (hybrid), \"a\" (attention only) or "
                           "\"m\" (Mamba only)",
                           r->where, l);
        c->layer_kind[l++] = s[0];
    }
    return 0;
}

static int read_global_layers(Reader *r, HymbaConfig *c) {
    memset(c->is_global, 0, sizeof c->is_global);
    if (c->sliding_window == 0) {
        for (int l = 0; l < c->n_layers; l++) c->is_global[l] = 1;
        return 0;
    }
    const cJSON *g = get(r, "global_attn_idx", 0);
    if (!g || cJSON_IsNull(g)) return 0; /* sliding window in every layer */
    int idx[HYMBA_MAX_LAYERS], n;
    if (read_layer_list(r, g, "global_attn_idx", c->n_layers, idx, &n)) return -1;
    for (int i = 0; i < n; i++) c->is_global[idx[i]] = 1;
    return 0;
}

/* kv_reuse_group: [[producer, consumer, ...], ...]; kv_reuse_every_i_layer: k > 0
   means layers i % k != 0 reuse the previous producer. */
static int read_kv_sharing(Reader *r, HymbaConfig *c) {
    for (int l = 0; l < c->n_layers; l++) c->kv_source[l] = l;
    const cJSON *groups = get(r, "kv_reuse_group", 0);
    int every;
    if (get_int(r, "kv_reuse_every_i_layer", 0, -1, &every)) return -1;
    int have_groups = groups && !cJSON_IsNull(groups);
    if (have_groups && every > 0)
        return err_set(r->err, "%s: keys \"kv_reuse_group\" and \"kv_reuse_every_i_layer\" are both set; use one",
                       r->where);
    if (every > 0) {
        for (int l = 0; l < c->n_layers; l++) c->kv_source[l] = l - l % every;
    } else if (have_groups) {
        if (!cJSON_IsArray(groups)) return err_set(r->err, "%s: key \"kv_reuse_group\" must be a list of lists", r->where);
        uint8_t seen[HYMBA_MAX_LAYERS] = {0};
        int gi = 0;
        const cJSON *grp;
        cJSON_ArrayForEach(grp, groups) {
            int idx[HYMBA_MAX_LAYERS], n;
            char key[64];
            snprintf(key, sizeof key, "kv_reuse_group[%d]", gi);
            if (read_layer_list(r, grp, key, c->n_layers, idx, &n)) return -1;
            if (n < 1) return err_set(r->err, "%s: key \"%s\" is empty", r->where, key);
            for (int i = 0; i < n; i++) {
                if (seen[idx[i]])
                    return err_set(r->err, "%s: key \"kv_reuse_group\": layer %d appears in more than one place",
                                   r->where, idx[i]);
                seen[idx[i]] = 1;
                if (i > 0 && idx[i] <= idx[0])
                    return err_set(r->err,
                                   "%s: key \"%s\": consumer layer %d must come after its producer layer %d",
                                   r->where, key, idx[i], idx[0]);
                c->kv_source[idx[i]] = idx[0];
            }
            gi++;
        }
    }
    const char *sharing_key = every > 0 ? "kv_reuse_every_i_layer" : "kv_reuse_group";
    for (int l = 0; l < c->n_layers; l++) {
        int src = c->kv_source[l];
        if (src == l) continue;
        if (!layer_has_attn(c, l) || !layer_has_attn(c, src))
            return err_set(r->err, "%s: key \"%s\" shares KV between layers %d and %d, but both must "
                           "have attention heads (layer_type \"h\" or \"a\")", r->where, sharing_key, src, l);
        if (c->is_global[l] != c->is_global[src])
            return err_set(r->err,
                           "%s: key \"%s\" shares KV between layer %d (%s) and layer %d (%s): a group "
                           "must be all global or all sliding-window (see global_attn_idx)",
                           r->where, sharing_key, src, c->is_global[src] ? "global" : "sliding-window", l,
                           c->is_global[l] ? "global" : "sliding-window");
    }
    return 0;
}

/* Keys whose only accepted value is fixed by what hymeval implements. */
static int check_unsupported(Reader *r) {
    int v;
    if (get_int(r, "num_experts", 0, 1, &v)) return -1;
    if (v != 1) return err_set(r->err, "%s: key \"num_experts\" is %d; only 1 (a dense MLP) is supported", r->where, v);
    if (get_int(r, "num_mamba", 0, 1, &v)) return -1;
    if (v != 1) return err_set(r->err, "%s: key \"num_mamba\" is %d; only 1 is supported", r->where, v);
    if (get_int(r, "memory_tokens_interspersed_every", 0, 0, &v)) return -1;
    if (v > 0)
        return err_set(r->err, "%s: key \"memory_tokens_interspersed_every\" is %d; only 0 (meta tokens as a prefix) "
                       "is supported", r->where, v);
    if (get_bool(r, "kv_weight_reuse", 0, 0, &v)) return -1;
    if (v) return err_set(r->err, "%s: key \"kv_weight_reuse\" is true; not supported", r->where);
    const char *act;
    if (get_str(r, "hidden_act", 0, "silu", &act)) return -1;
    if (strcmp(act, "silu") != 0)
        return err_set(r->err, "%s: key \"hidden_act\" is \"%s\"; the SSM conv activation must be \"silu\"", r->where, act);
    const char *mt;
    if (get_str(r, "model_type", 0, "hymba", &mt)) return -1;
    if (strcmp(mt, "hymba") != 0)
        return err_set(r->err, "%s: key \"model_type\" is \"%s\", expected \"hymba\"", r->where, mt);
    return 0;
}

static int read_sizes(Reader *r, HymbaConfig *c) {
    static const char *required[] = {"hidden_size", "num_hidden_layers", "num_attention_heads",
                                     "num_key_value_heads", "intermediate_size", "vocab_size", "mamba_d_state",
                                     "mamba_d_conv", "mamba_dt_rank"};
    int *dst[] = {&c->hidden_size, &c->n_layers, &c->n_heads, &c->n_kv_heads, &c->intermediate_size,
                  &c->vocab_size, &c->ssm_state, &c->ssm_conv, &c->ssm_dt_rank};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++) {
        if (get_int(r, required[i], 1, 0, dst[i])) return -1;
        if (dst[i] != &c->intermediate_size && positive(r, required[i], *dst[i])) return -1;
    }
    if (c->intermediate_size < 0)
        return err_set(r->err, "%s: key \"intermediate_size\" must be >= 0 (0 = no MLP)", r->where);
    if (c->n_layers > HYMBA_MAX_LAYERS)
        return err_set(r->err, "%s: key \"num_hidden_layers\" is %d; at most %d supported", r->where, c->n_layers,
                       HYMBA_MAX_LAYERS);
    double expand = 0;
    if (get_num(r, "mamba_expand", 1, 0, &expand)) return -1;
    c->ssm_inner = (int)(expand * c->hidden_size); /* int() as the official code does */
    if (c->ssm_inner <= 0) return err_set(r->err, "%s: key \"mamba_expand\" must be positive", r->where);
    if (c->hidden_size % c->n_heads)
        return err_set(r->err, "%s: key \"hidden_size\" (%d) must be divisible by \"num_attention_heads\" (%d)",
                       r->where, c->hidden_size, c->n_heads);
    if (c->n_heads % c->n_kv_heads)
        return err_set(r->err, "%s: key \"num_attention_heads\" (%d) must be divisible by \"num_key_value_heads\" (%d)",
                       r->where, c->n_heads, c->n_kv_heads);
    if (c->ssm_inner % c->n_heads)
        return err_set(r->err, "%s: mamba_expand x hidden_size (%d) must be divisible by \"num_attention_heads\" (%d)",
                       r->where, c->ssm_inner, c->n_heads);
    c->head_dim = c->hidden_size / c->n_heads;
    c->v_head_dim = c->ssm_inner / c->n_heads;
    if (c->head_dim % 2) return err_set(r->err, "%s: head dim %d must be even for RoPE", r->where, c->head_dim);

    /* Keys the official code has but whose other values its HymbaBlock ignores or breaks on. */
    int v;
    if (get_int(r, "attn_hidden_size", 0, -1, &v)) return -1;
    if (v > 0 && v != c->hidden_size)
        return err_set(r->err, "%s: key \"attn_hidden_size\" is %d; must be -1 or hidden_size (%d)", r->where, v,
                       c->hidden_size);
    if (get_int(r, "kq_head_dim", 0, -1, &v)) return -1;
    if (v > 0 && v != c->head_dim)
        return err_set(r->err, "%s: key \"kq_head_dim\" is %d; must be -1 or hidden_size/num_attention_heads (%d)",
                       r->where, v, c->head_dim);
    if (get_int(r, "v_head_dim", 0, -1, &v)) return -1;
    if (v > 0 && v != c->v_head_dim)
        return err_set(r->err, "%s: key \"v_head_dim\" is %d, inconsistent with mamba_expand x hidden_size / "
                       "num_attention_heads = %d", r->where, v, c->v_head_dim);
    const cJSON *conv_dim = get(r, "conv_dim", 0);
    if (conv_dim && !cJSON_IsNull(conv_dim)) {
        if (!cJSON_IsObject(conv_dim)) return err_set(r->err, "%s: key \"conv_dim\" must be an object", r->where);
        const cJSON *e;
        cJSON_ArrayForEach(e, conv_dim) {
            if (!cJSON_IsNumber(e) || (int)e->valuedouble != c->ssm_inner)
                return err_set(r->err, "%s: key \"conv_dim\"[\"%s\"] must equal mamba_expand x hidden_size (%d)",
                               r->where, e->string, c->ssm_inner);
        }
    }
    return 0;
}

static int read_attention(Reader *r, HymbaConfig *c) {
    if (get_int(r, "num_memory_tokens", 1, 0, &c->n_meta)) return -1;
    if (c->n_meta < 0) return err_set(r->err, "%s: key \"num_memory_tokens\" must be >= 0", r->where);
    const cJSON *sw = get(r, "sliding_window", 1);
    if (!sw) return -1;
    if (cJSON_IsNull(sw)) {
        c->sliding_window = 0;
    } else if (get_int(r, "sliding_window", 1, 0, &c->sliding_window) || positive(r, "sliding_window", c->sliding_window)) {
        return -1;
    }
    if (get_bool(r, "rope", 1, 1, &c->rope)) return -1;
    const char *rope_type;
    if (get_str(r, "rope_type", 0, "default", &rope_type)) return -1;
    if (strcmp(rope_type, "default") == 0) c->rope_type = ROPE_DEFAULT;
    else if (strcmp(rope_type, "ntk") == 0) c->rope_type = ROPE_NTK;
    else if (strcmp(rope_type, "dynamic_ntk") == 0)
        return err_set(r->err, "%s: key \"rope_type\" is \"dynamic_ntk\", whose frequencies change with the running "
                       "length; not supported (use \"default\" or \"ntk\")", r->where);
    else return err_set(r->err, "%s: key \"rope_type\" is \"%s\"; expected \"default\" or \"ntk\"", r->where, rope_type);
    if (get_num(r, "rope_theta", c->rope, 10000.0, &c->rope_theta)) return -1;
    if (c->rope_theta <= 1.0) return err_set(r->err, "%s: key \"rope_theta\" must be > 1", r->where);
    if (get_int(r, "max_position_embeddings", 1, 0, &c->max_position_embeddings)) return -1;
    if (positive(r, "max_position_embeddings", c->max_position_embeddings)) return -1;
    int need_orig = c->rope && c->rope_type == ROPE_NTK;
    if (get_int(r, "orig_max_position_embeddings", need_orig, 0, &c->orig_max_position_embeddings)) return -1;
    if (need_orig && positive(r, "orig_max_position_embeddings", c->orig_max_position_embeddings)) return -1;
    const char *kq;
    if (get_str(r, "kq_norm", 0, "none", &kq)) return -1;
    if (strcmp(kq, "none") == 0) c->kq_norm = KQ_NORM_NONE;
    else if (strcmp(kq, "rms") == 0) c->kq_norm = KQ_NORM_RMS;
    else if (strcmp(kq, "perhead-rms") == 0) c->kq_norm = KQ_NORM_PERHEAD;
    else return err_set(r->err, "%s: key \"kq_norm\" is \"%s\"; expected \"none\", \"rms\" or \"perhead-rms\"", r->where, kq);
    return 0;
}

static int read_ssm_and_mlp(Reader *r, HymbaConfig *c) {
    if (get_bool(r, "mamba_conv_bias", 1, 1, &c->conv_bias)) return -1;
    if (get_bool(r, "mamba_proj_bias", 1, 0, &c->proj_bias)) return -1;
    if (get_bool(r, "mamba_inner_layernorms", 1, 1, &c->inner_norms)) return -1;
    const char *act;
    if (get_str(r, "mlp_hidden_act", c->intermediate_size > 0, "silu", &act)) return -1;
    if (strcmp(act, "silu") == 0) c->mlp_act = MLP_SILU;
    else if (strcmp(act, "relu2") == 0) c->mlp_act = MLP_RELU2;
    else return err_set(r->err, "%s: key \"mlp_hidden_act\" is \"%s\"; expected \"silu\" or \"relu2\"", r->where, act);
    double eps = 0;
    if (get_num(r, "rms_norm_eps", 1, 1e-6, &eps)) return -1;
    if (!(eps > 0 && eps < 1)) return err_set(r->err, "%s: key \"rms_norm_eps\" must be in (0, 1)", r->where);
    c->rms_eps = (float)eps;
    if (get_bool(r, "tie_word_embeddings", 0, 1, &c->tie_embeddings)) return -1;
    if (get_int(r, "bos_token_id", 0, 1, &c->bos_id)) return -1;
    if (get_int(r, "eos_token_id", 0, 2, &c->eos_id)) return -1;
    const cJSON *pad = get(r, "pad_token_id", 0);
    c->pad_id = 0;
    if (pad && !cJSON_IsNull(pad) && get_int(r, "pad_token_id", 0, 0, &c->pad_id)) return -1;
    return 0;
}

int config_parse(HymbaConfig *cfg, const char *json_text, const char *where, Err *err) {
    memset(cfg, 0, sizeof *cfg);
    cJSON *root = cJSON_Parse(json_text);
    if (!root) return err_set(err, "%s: not valid JSON (near: %.40s)", where, cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : "?");
    Reader r = {root, where, err};
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        err_set(err, "%s: expected a JSON object", where);
        goto done;
    }
    if (check_unsupported(&r) || read_sizes(&r, cfg) || read_attention(&r, cfg) || read_ssm_and_mlp(&r, cfg) ||
        read_layer_kinds(&r, cfg) || read_global_layers(&r, cfg) || read_kv_sharing(&r, cfg))
        goto done;
    if (cfg->bos_id >= cfg->vocab_size || cfg->eos_id >= cfg->vocab_size)
        err_set(err, "%s: bos_token_id/eos_token_id must be < vocab_size (%d)", where, cfg->vocab_size);
    else
        rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

int config_load(HymbaConfig *cfg, const char *path, Err *err) {
    char file[4096];
    size_t n = strlen(path);
    if (n > 5 && strcmp(path + n - 5, ".json") == 0) snprintf(file, sizeof file, "%s", path);
    else snprintf(file, sizeof file, "%s/config.json", path);
    FILE *f = fopen(file, "rb");
    if (!f) return err_set(err, "%s: cannot open (a checkpoint directory needs config.json)", file);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (size < 0 || size > (64 << 20)) {
        fclose(f);
        return err_set(err, "%s: unreadable or larger than 64 MB", file);
    }
    char *text = malloc((size_t)size + 1);
    if (!text || fread(text, 1, (size_t)size, f) != (size_t)size) {
        free(text);
        fclose(f);
        return err_set(err, "%s: read failed", file);
    }
    fclose(f);
    text[size] = 0;
    int rc = config_parse(cfg, text, file, err);
    free(text);
    return rc;
}

InProjSplit config_in_proj_split(const HymbaConfig *c, int l) {
    InProjSplit s = {-1, -1, -1, -1, -1, 0};
    if (layer_has_attn(c, l)) {
        s.q = s.rows;
        s.rows += c->n_heads * c->head_dim;
        if (layer_owns_kv(c, l)) {
            s.k = s.rows;
            s.rows += c->n_kv_heads * c->head_dim;
            s.v = s.rows;
            s.rows += c->n_kv_heads * c->v_head_dim;
        }
    }
    if (layer_has_ssm(c, l)) {
        s.x = s.rows;
        s.rows += c->ssm_inner;
        s.z = s.rows;
        s.rows += c->ssm_inner;
    }
    return s;
}

double config_rope_base(const HymbaConfig *c) {
    if (c->rope_type == ROPE_NTK) {
        const double factor = 2.0; /* fixed in the official LlamaRotaryEmbedding */
        double scale = factor * c->max_position_embeddings / c->orig_max_position_embeddings - (factor - 1.0);
        return c->rope_theta * pow(scale, (double)c->head_dim / (c->head_dim - 2));
    }
    return c->rope_theta;
}

double config_cache_bytes(const HymbaConfig *c, long tokens, int kv_bytes, int conv_bytes) {
    double bytes = 0;
    for (int l = 0; l < c->n_layers; l++) {
        if (layer_owns_kv(c, l)) {
            long band = c->is_global[l] ? tokens : (tokens < c->sliding_window + 1 ? tokens : c->sliding_window + 1);
            double slots = (double)c->n_meta + band;
            bytes += slots * c->n_kv_heads * (c->head_dim + c->v_head_dim) * kv_bytes;
        }
        if (layer_has_ssm(c, l)) {
            bytes += (double)c->ssm_inner * (c->ssm_conv - 1) * conv_bytes;
            bytes += (double)c->ssm_inner * c->ssm_state * 4;
        }
    }
    return bytes;
}

ParamCount config_param_count(const HymbaConfig *c) {
    ParamCount p = {0};
    int64_t H = c->hidden_size, I = c->ssm_inner, N = c->ssm_state, R = c->ssm_dt_rank, K = c->ssm_conv;
    p.embed = (int64_t)c->vocab_size * H;
    p.meta = (int64_t)c->n_meta * H;
    p.lm_head = c->tie_embeddings ? 0 : (int64_t)c->vocab_size * H;
    for (int l = 0; l < c->n_layers; l++) {
        InProjSplit s = config_in_proj_split(c, l);
        int64_t attn_rows = layer_has_attn(c, l) ? (s.x >= 0 ? s.x : s.rows) : 0;
        p.attn_qkv += attn_rows * H;
        if (c->proj_bias) p.attn_qkv += attn_rows;
        if (layer_has_ssm(c, l)) {
            p.ssm += 2 * I * H + (c->proj_bias ? 2 * I : 0); /* x and z rows of in_proj */
            p.ssm += I * K + (c->conv_bias ? I : 0);
            p.ssm += (R + 2 * N) * I + I * R + I + I * N + I;
            if (c->inner_norms) p.norms += R + 2 * N;
            p.norms += I;
        }
        if (layer_has_attn(c, l)) {
            p.norms += I;
            /* q_norm in every attention layer; k_norm only where the KV is made (consumers have no k) */
            int owns = layer_owns_kv(c, l);
            if (c->kq_norm == KQ_NORM_RMS) p.norms += (1 + owns) * c->head_dim;
            if (c->kq_norm == KQ_NORM_PERHEAD)
                p.norms += (int64_t)(c->n_heads + owns * c->n_kv_heads) * c->head_dim;
        }
        p.fuse_out += I * H + (c->proj_bias ? H : 0);
        p.norms += H;
        if (c->intermediate_size > 0) {
            int64_t F = c->intermediate_size;
            p.mlp += (c->mlp_act == MLP_SILU ? 3 : 2) * F * H;
            p.norms += H;
        }
    }
    p.norms += H;
    p.total = p.embed + p.meta + p.lm_head + p.attn_qkv + p.ssm + p.fuse_out + p.norms + p.mlp;
    return p;
}
