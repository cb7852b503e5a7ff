/* words.c: seeded random numbers, word lists and the random keys/values the
   synthetic tasks draw. The lists were written for hymeval (no third-party
   word list is copied): everyday English adjectives, countable nouns with
   regular plurals, base-form verbs and frequent words. */
#include "words.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- random numbers */

void rng_seed(Rng *r, uint64_t seed) { r->state = seed; }

uint64_t rng_next(Rng *r) {
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double rng_uniform(Rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

uint64_t rng_below(Rng *r, uint64_t n) {
    /* reject the top sliver that would make some residues more likely */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = rng_next(r);
    while (x >= limit);
    return x % n;
}

int64_t rng_range(Rng *r, int64_t lo, int64_t hi) {
    return lo + (int64_t)rng_below(r, (uint64_t)(hi - lo) + 1);
}

void rng_shuffle(Rng *r, void *base, size_t n, size_t size) {
    unsigned char *p = base, tmp[64];
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_below(r, i);
        if (j == i - 1) continue;
        unsigned char *a = p + (i - 1) * size, *b = p + j * size;
        for (size_t off = 0; off < size; off += sizeof tmp) {
            size_t k = size - off < sizeof tmp ? size - off : sizeof tmp;
            memcpy(tmp, a + off, k);
            memcpy(a + off, b + off, k);
            memcpy(b + off, tmp, k);
        }
    }
}

void rng_sample(Rng *r, size_t n, size_t k, size_t *out) {
    /* Floyd's algorithm would need a set; k is small here, so a partial
       shuffle of an index array is simplest */
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx) {
        for (size_t i = 0; i < k; i++) out[i] = i; /* out of memory: degrade deterministically */
        return;
    }
    for (size_t i = 0; i < n; i++) idx[i] = i;
    for (size_t i = 0; i < k; i++) {
        size_t j = i + (size_t)rng_below(r, n - i);
        size_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        out[i] = idx[i];
    }
    free(idx);
}

uint64_t seed_mix(uint64_t a, uint64_t b) {
    Rng r = {a ^ (b * 0xd1342543de82ef95ULL)};
    rng_next(&r);
    return rng_next(&r);
}

uint64_t hash_string(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

double zeta(double alpha) {
    /* sum of the first N terms, then the Euler-Maclaurin tail
       N^(1-a)/(a-1) - N^-a/2 + a N^(-a-1)/12 - a(a+1)(a+2) N^(-a-3)/720 */
    const int N = 64;
    double s = 0;
    for (int k = 1; k < N; k++) s += pow(k, -alpha);
    double n = N;
    s += pow(n, 1 - alpha) / (alpha - 1) + 0.5 * pow(n, -alpha) + alpha * pow(n, -alpha - 1) / 12 -
         alpha * (alpha + 1) * (alpha + 2) * pow(n, -alpha - 3) / 720;
    return s;
}

int zipf_init(Zipf *z, int n, double alpha) {
    z->n = n;
    z->cdf = malloc((size_t)(n > 0 ? n : 1) * sizeof *z->cdf);
    if (!z->cdf) return -1;
    double total = 0;
    for (int k = 1; k <= n; k++) z->cdf[k - 1] = (total += pow(k, -alpha));
    for (int k = 0; k < n; k++) z->cdf[k] /= total;
    return 0;
}

int zipf_draw(const Zipf *z, Rng *r) {
    double u = rng_uniform(r);
    int lo = 0, hi = z->n - 1;
    while (lo < hi) { /* first k with cdf[k] > u */
        int mid = lo + (hi - lo) / 2;
        if (z->cdf[mid] > u) hi = mid;
        else lo = mid + 1;
    }
    return lo + 1;
}

void zipf_free(Zipf *z) {
    free(z->cdf);
    z->cdf = NULL;
    z->n = 0;
}

/* ---------------------------------------------------------------- word lists */

const char *const words_adjectives[] = {
    "able", "absent", "abundant", "accurate", "active", "actual", "adequate", "agile", "agreeable",
    "airy", "alert", "alive", "amber", "amiable", "ample", "ancient", "angry", "anxious", "apparent",
    "ardent", "arid", "artful", "ashamed", "astute", "austere", "awake", "aware", "awkward", "azure",
    "balmy", "barren", "bashful", "basic", "benign", "bitter", "bland", "blank", "bleak", "blind",
    "blissful", "blunt", "bold", "bored", "boundless", "brave", "brazen", "breezy", "brief", "bright",
    "brisk", "brittle", "broad", "broken", "bumpy", "burly", "bustling", "busy", "calm", "candid",
    "careful", "careless", "casual", "cautious", "certain", "chalky", "charming", "cheap", "cheerful",
    "chilly", "chubby", "chunky", "civil", "clean", "clear", "clever", "close", "cloudy", "clumsy",
    "coarse", "cobalt", "cold", "colossal", "common", "compact", "complex", "concise", "confident",
    "constant", "content", "cool", "cordial", "cozy", "crafty", "cranky", "creaky", "crimson", "crisp",
    "crooked", "crowded", "cruel", "crusty", "cunning", "curious", "curly", "dainty", "damp", "dapper",
    "daring", "dark", "dazzling", "deafening", "dear", "decent", "deep", "deft", "delicate", "dense",
    "devout", "diligent", "dim", "direct", "dismal", "distant", "dizzy", "docile", "dormant", "drab",
    "dreary", "drowsy", "dry", "dull", "durable", "dusky", "dusty", "dutiful", "eager", "early",
    "earnest", "earthy", "easy", "electric", "elegant", "eloquent", "emerald", "empty", "endless",
    "entire", "equal", "even", "exact", "exotic", "faint", "fair", "faithful", "famous", "fancy",
    "fatal", "fearless", "feathery", "feeble", "feisty", "fertile", "festive", "fickle", "fierce",
    "fiery", "final", "fine", "firm", "flat", "flawless", "fleeting", "floral", "fluent", "fluffy",
    "foggy", "fond", "formal", "fragile", "frail", "frank", "frantic", "free", "fresh", "friendly",
    "frosty", "frozen", "frugal", "full", "funny", "fuzzy", "gallant", "gaudy", "gaunt", "gentle",
    "genuine", "giant", "giddy", "gilded", "glad", "gleaming", "gloomy", "glorious", "glossy", "glum",
    "golden", "graceful", "grand", "grassy", "grateful", "great", "greedy", "green", "grim", "gritty",
    "gruff", "gusty", "handy", "happy", "hard", "hardy", "harsh", "hasty", "hazy", "healthy", "hearty",
    "heavy", "hefty", "helpful", "heroic", "hidden", "high", "hilly", "hollow", "homely", "honest",
    "hopeful", "huge", "humble", "humid", "hungry", "hushed", "husky", "icy", "idle", "idyllic",
    "immense", "innocent", "intense", "jagged", "jolly", "jovial", "joyful", "jumpy", "keen", "kind",
    "kindly", "knotty", "lame", "lanky", "large", "late", "lavish", "lazy", "leafy", "lean", "legal",
    "level", "light", "limber", "little", "lively", "local", "lofty", "lonely", "long", "loose", "loud",
    "lovely", "loyal", "lucid", "lucky", "luminous", "lumpy", "lunar", "lush", "main", "majestic",
    "major", "mangy", "marble", "massive", "mature", "meager", "meaty", "meek", "mellow", "merry",
    "mighty", "mild", "minor", "misty", "modern", "modest", "moist", "molten", "mossy", "muddy",
    "murky", "mystic", "narrow", "native", "nautical", "neat", "nervous", "new", "nice", "nifty",
    "nimble", "noble", "nocturnal", "noisy", "normal", "novel", "numb", "nutty", "oaken", "obvious",
    "odd", "oily", "old", "opaque", "open", "orange", "ordinary", "ornate", "pale", "partial", "pastel",
    "patchy", "patient", "peaceful", "pearly", "peppery", "perfect", "pesky", "pink", "pious", "placid",
    "plain", "playful", "pleasant", "plump", "plush", "polar", "polite", "poor", "popular", "portly",
    "precise", "pretty", "prickly", "private", "probable", "proud", "prudent", "public", "puffy",
    "pure", "purple", "quaint", "quick", "quiet", "quirky", "radiant", "ragged", "rapid", "rare", "raw",
    "ready", "real", "red", "regular", "remote", "rich", "rigid", "ripe", "robust", "rough", "round",
    "rowdy", "royal", "rugged", "rural", "rustic", "rusty", "sacred", "sad", "safe", "salty", "sandy",
    "savvy", "scarce", "scarlet", "scrappy", "secret", "secure", "serene", "severe", "shabby", "shaggy",
    "shallow", "sharp", "shiny", "short", "shrewd", "shy", "silent", "silky", "silly", "silver",
    "simple", "sincere", "skinny", "sleek", "sleepy", "slender", "slim", "slow", "small", "smart",
    "smoky", "smooth", "snowy", "snug", "soft", "soggy", "solar", "solid", "somber", "sordid", "sour",
    "spare", "sparkling", "sparse", "spicy", "spotty", "spry", "squeaky", "stable", "stately", "steady",
    "steep", "sticky", "stiff", "still", "stoic", "stormy", "strange", "strict", "strong", "stuffy",
    "sturdy", "sublime", "subtle", "sudden", "sultry", "sunken", "sunny", "superb", "sure", "swampy",
    "sweet", "swift", "tall", "tame", "tangy", "tasty", "tawny", "teeny", "tender", "tense", "tepid",
    "thick", "thin", "thirsty", "thorny", "tidy", "tight", "timid", "tiny", "tired", "toasty", "tough",
    "towering", "tranquil", "tricky", "tropical", "true", "tubby", "tufted", "unique", "upper", "urban",
    "useful", "vacant", "vague", "valid", "vast", "velvet", "verdant", "vibrant", "vigilant", "violet",
    "vivid", "warm", "wary", "wavy", "weak", "wealthy", "weary", "weedy", "wet", "white", "whole",
    "wide", "wild", "windy", "wintry", "wiry", "wise", "wistful", "witty", "wobbly", "wooden", "woolly",
    "worthy", "wrinkled", "yellow", "young", "zealous", "zesty"
};
const size_t words_n_adjectives = sizeof words_adjectives / sizeof *words_adjectives;

const char *const words_nouns[] = {
    "acorn", "alley", "almanac", "amulet", "anchor", "animal", "ankle", "antenna", "anthem", "apricot",
    "apron", "aquarium", "arch", "archive", "arena", "armchair", "arrow", "artist", "atlas", "attic",
    "author", "avalanche", "avenue", "axle", "badge", "badger", "bagel", "bakery", "balcony", "ball",
    "balloon", "banana", "band", "bandit", "banner", "bannister", "barge", "barn", "barrel", "basin",
    "basket", "bay", "beach", "beacon", "beaker", "beam", "bean", "bear", "bed", "bee", "beetle",
    "bell", "bench", "berry", "bicycle", "bird", "biscuit", "blanket", "blizzard", "blossom",
    "blueprint", "boat", "bobbin", "bone", "bonnet", "book", "boot", "border", "bottle", "boulder",
    "bouquet", "bowl", "box", "bracelet", "bramble", "branch", "brick", "bridge", "brook", "broom",
    "brush", "bucket", "buckle", "bug", "bugle", "building", "bulb", "bundle", "bunker", "burrow",
    "button", "cabin", "cabinet", "cable", "cake", "camera", "camp", "canal", "candle", "canister",
    "cannon", "canoe", "canopy", "canyon", "cap", "captain", "caravan", "card", "cardinal", "carousel",
    "carpet", "carrot", "cart", "castle", "cat", "catalog", "cauldron", "cave", "cedar", "ceiling",
    "cellar", "chair", "chalice", "chapter", "chariot", "chart", "cheetah", "cherry", "chest",
    "chestnut", "chimney", "chipmunk", "choice", "chorus", "cinema", "circle", "citadel", "city",
    "clarinet", "cliff", "clock", "cloud", "coast", "coat", "cobbler", "cocoon", "cogwheel", "coin",
    "collar", "colony", "comet", "compass", "condor", "cork", "corner", "cornet", "corridor", "costume",
    "cottage", "council", "country", "courtyard", "cradle", "crane", "crate", "crater", "crayon",
    "cricket", "crow", "crown", "crystal", "cup", "cupboard", "curtain", "cushion", "cymbal", "dagger",
    "daisy", "dam", "dancer", "dandelion", "decision", "desert", "desk", "detail", "device", "diagram",
    "dial", "diamond", "diary", "dinosaur", "dish", "doctor", "dog", "doll", "dolphin", "dome",
    "donkey", "door", "dove", "dragon", "dragonfly", "drawer", "dream", "drone", "drum", "duck", "dune",
    "dungeon", "eagle", "easel", "eel", "elbow", "elevator", "elm", "emblem", "emerald", "engine",
    "engineer", "envelope", "escalator", "estuary", "example", "experiment", "fabric", "factory",
    "falcon", "farm", "feather", "fence", "fern", "ferry", "fiddle", "field", "figurine", "finger",
    "firefly", "fjord", "flag", "flame", "flask", "flint", "flower", "flute", "forest", "fork",
    "fossil", "fountain", "fox", "frame", "freighter", "frigate", "gadget", "gallery", "galley",
    "garden", "garland", "garment", "gate", "gazebo", "gem", "geyser", "ghost", "giraffe", "glacier",
    "glass", "glider", "glove", "goat", "goblet", "gondola", "gorilla", "gourd", "granary", "grotto",
    "guitar", "gull", "habit", "hamlet", "hammer", "hammock", "harbor", "harp", "harvest", "hat",
    "hatchet", "hawk", "hazel", "hedge", "hedgehog", "helmet", "heron", "hill", "hinge", "hive",
    "horizon", "hornet", "horse", "hotel", "hourglass", "hut", "iceberg", "idea", "igloo", "inkwell",
    "insect", "instinct", "instrument", "invention", "island", "isthmus", "jacket", "jaguar", "jar",
    "jellyfish", "jetty", "jewel", "journal", "journey", "juggler", "jungle", "kayak", "kernel",
    "kestrel", "kettle", "kiln", "kingdom", "kiosk", "kitchen", "kite", "koala", "ladder", "lagoon",
    "lake", "lamp", "lantern", "lasso", "lattice", "lawn", "ledger", "lemon", "lemur", "lentil",
    "lesson", "letter", "lever", "library", "lighthouse", "lily", "lion", "lizard", "lobster", "lock",
    "locket", "locomotive", "lodge", "loom", "lute", "lynx", "machine", "magnet", "magpie", "mallet",
    "mammoth", "mantle", "manual", "map", "maple", "market", "marsh", "mast", "meadow", "melody",
    "melon", "memory", "merchant", "meteor", "method", "microscope", "minnow", "mirror", "mistake",
    "mitten", "moat", "model", "mole", "moment", "monastery", "monkey", "monument", "moon", "mosaic",
    "moth", "motor", "mountain", "mule", "mural", "museum", "mushroom", "napkin", "nectarine", "nest",
    "notebook", "novel", "nugget", "oar", "observatory", "ocean", "octagon", "office", "olive", "onion",
    "opinion", "orbit", "orchard", "orchid", "organ", "ostrich", "otter", "oven", "owl", "oyster",
    "paddle", "page", "pagoda", "painter", "palace", "palette", "pamphlet", "pancake", "panel",
    "panther", "parachute", "parasol", "parcel", "park", "parrot", "pasture", "path", "pattern",
    "pavilion", "peacock", "pear", "pebble", "pelican", "pencil", "pendant", "pendulum", "penguin",
    "peninsula", "pepper", "pheasant", "piano", "pier", "pigeon", "pillow", "pilot", "pinecone",
    "pistachio", "pitcher", "planet", "plate", "plateau", "plum", "pocket", "poem", "pond", "pony",
    "porch", "porcupine", "portrait", "pot", "prairie", "principle", "prism", "problem", "promise",
    "propeller", "pulley", "pumpkin", "puppet", "puzzle", "quarry", "quilt", "rabbit", "raccoon",
    "radish", "raft", "rafter", "railway", "rampart", "raven", "ravine", "reason", "recipe", "record",
    "reef", "relic", "reservoir", "rhythm", "ribbon", "rickshaw", "riddle", "river", "road", "robot",
    "rock", "rocket", "roof", "room", "rooster", "rope", "rose", "ruby", "rudder", "rule", "rumor",
    "saddle", "sailor", "salad", "sandal", "sandwich", "sapphire", "satellite", "scallop", "scepter",
    "school", "schooner", "scroll", "seagull", "seal", "season", "sensor", "sextant", "shadow", "shell",
    "shelter", "ship", "shipwreck", "shore", "shovel", "shrub", "signal", "silo", "singer", "sister",
    "skill", "skillet", "skirt", "skyline", "sled", "slipper", "sloth", "snail", "snake", "snowflake",
    "soldier", "song", "sparrow", "spider", "spindle", "spire", "spoon", "sprocket", "spruce",
    "squirrel", "stable", "stage", "stair", "stallion", "star", "starfish", "station", "statue",
    "steeple", "stone", "stork", "storm", "story", "stove", "strategy", "stream", "street", "student",
    "studio", "suitcase", "summit", "sundial", "sunflower", "swallow", "swan", "sword", "sycamore",
    "symbol", "system", "table", "tablet", "tadpole", "tailor", "tambourine", "tangerine", "tapestry",
    "teacher", "teapot", "telescope", "temple", "tent", "terrace", "theater", "theory", "thimble",
    "thistle", "thread", "thunderbolt", "ticket", "tiger", "toad", "toboggan", "tool", "torch",
    "tortoise", "tower", "town", "toy", "tractor", "tradition", "trail", "train", "tree", "trellis",
    "trinket", "trolley", "trophy", "trowel", "trumpet", "tugboat", "tulip", "tunnel", "turnip",
    "turret", "turtle", "typewriter", "umbrella", "unicorn", "urn", "valley", "vase", "verse",
    "version", "vessel", "village", "vineyard", "violin", "viper", "voyage", "vulture", "wagon", "wall",
    "wallet", "walnut", "walrus", "wand", "warehouse", "warrior", "waterfall", "wave", "weasel",
    "weathervane", "well", "whale", "wheel", "whistle", "willow", "windmill", "window", "wing",
    "wizard", "woodpecker", "workshop", "worm", "wreath", "wren", "yacht", "yak", "yard", "zebra"
};
const size_t words_n_nouns = sizeof words_nouns / sizeof *words_nouns;

const char *const words_verbs[] = {
    "absorb", "accept", "acquire", "adjust", "admire", "adopt", "advise", "align", "allow", "alter",
    "amend", "amuse", "analyze", "announce", "anticipate", "appoint", "approve", "arrange", "assemble",
    "assess", "assign", "assist", "attach", "attract", "avoid", "bake", "balance", "bend", "blend",
    "bless", "boil", "borrow", "braid", "brew", "browse", "brush", "build", "bury", "calculate",
    "capture", "carry", "carve", "catch", "celebrate", "change", "chase", "check", "choose", "chop",
    "clarify", "classify", "clean", "clear", "climb", "close", "coach", "collect", "color", "combine",
    "comfort", "command", "compare", "compile", "complete", "compose", "confirm", "connect", "conserve",
    "consider", "construct", "consult", "contain", "convert", "convince", "cook", "copy", "correct",
    "count", "cover", "craft", "create", "cross", "crush", "cultivate", "cure", "cut", "decorate",
    "defend", "define", "deliver", "describe", "design", "destroy", "detect", "develop", "discover",
    "display", "dissolve", "divide", "double", "drag", "drain", "draw", "dress", "drive", "dust",
    "earn", "edit", "embrace", "employ", "enjoy", "enlarge", "enter", "erase", "escort", "estimate",
    "examine", "exchange", "expand", "explain", "explore", "express", "extend", "fasten", "feed",
    "fetch", "fill", "filter", "find", "fix", "flatten", "fold", "follow", "forgive", "form", "frame",
    "freeze", "gather", "gauge", "glue", "grab", "grasp", "greet", "grind", "grip", "grow", "guard",
    "guide", "handle", "hang", "harvest", "heal", "heat", "help", "hide", "highlight", "hire", "hold",
    "honor", "host", "hunt", "identify", "ignore", "illustrate", "imagine", "imitate", "improve",
    "include", "increase", "inform", "inherit", "inspect", "inspire", "install", "insure", "invent",
    "invite", "iron", "join", "judge", "juggle", "keep", "kick", "knead", "knit", "knock", "label",
    "launch", "lead", "learn", "lend", "level", "lift", "light", "limit", "list", "load", "locate",
    "lock", "maintain", "manage", "mark", "master", "match", "measure", "melt", "mend", "merge", "mix",
    "mold", "monitor", "move", "name", "narrate", "navigate", "negotiate", "notice", "nourish",
    "nurture", "observe", "obtain", "offer", "open", "operate", "order", "organize", "outline",
    "overlook", "own", "pack", "paint", "pardon", "pass", "patch", "pause", "peel", "perform", "permit",
    "persuade", "pick", "pile", "pinch", "place", "plan", "plant", "play", "please", "plow", "polish",
    "pour", "practice", "praise", "preach", "predict", "prepare", "present", "preserve", "press",
    "print", "prize", "produce", "promote", "protect", "provide", "prune", "publish", "pull", "pump",
    "punch", "purchase", "pursue", "push", "raise", "rank", "reach", "read", "rebuild", "receive",
    "recognize", "recommend", "record", "recover", "recycle", "reduce", "refine", "reflect", "refresh",
    "register", "reject", "release", "relieve", "remember", "remind", "remove", "renew", "repair",
    "repeat", "replace", "report", "request", "rescue", "research", "reserve", "resolve", "respect",
    "restore", "retain", "retrieve", "return", "reveal", "review", "revise", "reward", "rinse", "roast",
    "roll", "rotate", "rub", "sail", "salute", "sample", "save", "scan", "scatter", "schedule", "scold",
    "scrape", "scrub", "seal", "search", "season", "secure", "select", "sell", "send", "serve",
    "settle", "sew", "shake", "shape", "share", "sharpen", "shelter", "shield", "shift", "shine",
    "shovel", "show", "shuffle", "sift", "sign", "simplify", "sketch", "skim", "slice", "smooth",
    "soak", "solve", "sort", "sow", "spare", "spell", "spend", "spin", "splash", "split", "spot",
    "spray", "spread", "squeeze", "stack", "stamp", "staple", "steer", "stir", "stitch", "store",
    "straighten", "strengthen", "stretch", "study", "suggest", "supply", "support", "surprise",
    "surround", "suspend", "sweep", "swing", "tackle", "tame", "tap", "taste", "teach", "tend", "test",
    "thank", "thread", "tickle", "tidy", "tie", "toast", "toss", "touch", "tow", "trace", "track",
    "trade", "train", "transfer", "translate", "transport", "trap", "treasure", "trim", "trust", "tug",
    "tune", "turn", "twist", "type", "uncover", "understand", "unfold", "unite", "unlock", "unpack",
    "untie", "update", "uphold", "use", "varnish", "verify", "visit", "wander", "warm", "warn", "wash",
    "watch", "water", "wave", "weave", "weigh", "welcome", "whisk", "whittle", "widen", "wind", "wipe",
    "wrap", "wrestle", "write", "yield", "zip"
};
const size_t words_n_verbs = sizeof words_verbs / sizeof *words_verbs;

const char *const words_common[] = {
    "about", "above", "across", "action", "after", "again", "against", "age", "ago", "agree", "ahead",
    "air", "allow", "almost", "alone", "along", "already", "also", "although", "always", "among",
    "amount", "another", "anyone", "anything", "appear", "area", "around", "arrive", "art", "ask",
    "attention", "away", "baby", "back", "bad", "base", "beautiful", "because", "become", "before",
    "begin", "behind", "believe", "below", "beside", "best", "better", "between", "beyond", "big",
    "black", "blood", "blue", "board", "body", "both", "bring", "brother", "brown", "business", "buy",
    "call", "came", "car", "care", "case", "center", "century", "chance", "change", "child", "children",
    "church", "class", "clear", "close", "color", "come", "company", "consider", "continue", "control",
    "cost", "could", "course", "cover", "create", "cut", "dark", "daughter", "day", "dead", "deal",
    "death", "decide", "deep", "develop", "difference", "different", "difficult", "dinner", "direction",
    "discover", "doctor", "door", "down", "draw", "during", "each", "early", "earth", "east", "easy",
    "eat", "edge", "effect", "effort", "eight", "either", "else", "end", "enough", "enter", "entire",
    "especially", "evening", "event", "ever", "every", "everyone", "everything", "exactly", "example",
    "experience", "explain", "eye", "face", "fact", "fall", "family", "far", "fast", "father", "fear",
    "feel", "feeling", "few", "field", "fight", "figure", "final", "find", "fine", "fire", "first",
    "fish", "five", "floor", "fly", "follow", "food", "foot", "force", "forget", "form", "forward",
    "four", "free", "friend", "front", "full", "future", "game", "garden", "general", "get", "girl",
    "give", "glad", "go", "good", "government", "great", "green", "ground", "group", "grow", "guess",
    "hair", "half", "hand", "happen", "happy", "hard", "have", "head", "health", "hear", "heart",
    "heat", "heavy", "help", "here", "high", "himself", "history", "hold", "home", "hope", "horse",
    "hot", "hour", "house", "however", "hundred", "husband", "idea", "important", "inside", "instead",
    "interest", "island", "job", "join", "just", "keep", "kind", "king", "know", "knowledge", "land",
    "language", "large", "last", "late", "laugh", "law", "lay", "lead", "learn", "least", "leave",
    "left", "less", "let", "letter", "level", "life", "light", "like", "line", "list", "listen",
    "little", "live", "local", "long", "look", "lose", "lot", "loud", "love", "low", "machine", "main",
    "make", "man", "many", "market", "matter", "maybe", "mean", "measure", "meet", "member", "memory",
    "middle", "might", "mile", "mind", "minute", "miss", "modern", "moment", "money", "month", "more",
    "morning", "most", "mother", "mountain", "move", "much", "music", "must", "myself", "name",
    "nation", "natural", "near", "nearly", "need", "never", "news", "next", "nice", "night", "nine",
    "noise", "none", "north", "note", "nothing", "notice", "now", "object", "ocean", "offer", "office",
    "often", "oil", "once", "only", "open", "order", "other", "outside", "over", "own", "page", "paper",
    "parent", "part", "party", "pass", "past", "pattern", "pay", "peace", "people", "perhaps", "period",
    "person", "picture", "piece", "place", "plan", "plant", "play", "point", "poor", "popular",
    "position", "possible", "power", "present", "pretty", "price", "problem", "produce", "product",
    "program", "public", "pull", "purpose", "push", "put", "quality", "quarter", "quick", "quite",
    "race", "rain", "raise", "reach", "read", "ready", "real", "reason", "receive", "record", "region",
    "remain", "remember", "report", "rest", "result", "return", "rich", "ride", "right", "river",
    "road", "rock", "room", "round", "rule", "run", "safe", "sail", "same", "save", "say", "school",
    "science", "sea", "season", "seat", "second", "section", "see", "seem", "sell", "send", "sense",
    "serve", "set", "settle", "seven", "several", "shape", "share", "short", "should", "shoulder",
    "show", "side", "sign", "simple", "since", "sing", "single", "sister", "sit", "six", "size",
    "skill", "skin", "sleep", "slow", "small", "smile", "snow", "society", "soft", "soldier", "some",
    "someone", "something", "sometimes", "son", "song", "soon", "sort", "sound", "south", "space",
    "speak", "speed", "spend", "spring", "square", "stand", "star", "start", "state", "station", "stay",
    "step", "still", "stone", "stop", "store", "story", "strange", "street", "strong", "student",
    "study", "subject", "success", "sudden", "summer", "sun", "support", "sure", "surface", "system",
    "table", "take", "talk", "teach", "team", "tell", "ten", "test", "than", "thank", "their", "them",
    "then", "there", "these", "thick", "thin", "thing", "think", "third", "those", "though", "thought",
    "thousand", "three", "through", "throw", "time", "today", "together", "tomorrow", "tonight", "top",
    "toward", "town", "trade", "train", "travel", "tree", "trip", "trouble", "true", "try", "turn",
    "twelve", "twenty", "two", "type", "under", "understand", "until", "upon", "usual", "valley",
    "very", "view", "village", "visit", "voice", "wait", "walk", "wall", "want", "war", "warm", "wash",
    "watch", "water", "way", "wear", "weather", "week", "weight", "west", "wheel", "where", "whether",
    "which", "while", "white", "whole", "whose", "wide", "wife", "wild", "will", "wind", "window",
    "winter", "wish", "with", "within", "without", "woman", "wonder", "wood", "work", "world", "write",
    "wrong", "yard", "year", "yellow", "yesterday", "young", "your"
};
const size_t words_n_common = sizeof words_common / sizeof *words_common;

const char *words_pick(Rng *r, const char *const *list, size_t n) { return list[rng_below(r, n)]; }

static int is_vowel(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

void word_plural(const char *noun, char *out, size_t cap) {
    size_t n = strlen(noun);
    char last = n ? noun[n - 1] : 0, before = n > 1 ? noun[n - 2] : 0;
    if (last == 'y' && n > 1 && !is_vowel(before))
        snprintf(out, cap, "%.*sies", (int)(n - 1), noun);
    else if (last == 's' || last == 'x' || last == 'z' || (last == 'h' && (before == 'c' || before == 's')))
        snprintf(out, cap, "%ses", noun);
    else
        snprintf(out, cap, "%ss", noun);
}

const char *word_article(const char *next) {
    /* spelling, not sound: "an apple", "an hour" is rare enough to ignore, and
       the u- words said with a "you" keep "a" */
    static const char *const you[] = {"uni", "use", "usu", "uti", "eu"};
    char c = (char)tolower((unsigned char)next[0]);
    if (!is_vowel(c)) return "a";
    for (size_t i = 0; i < sizeof you / sizeof *you; i++)
        if (strncasecmp(next, you[i], strlen(you[i])) == 0) return "a";
    return "an";
}

void words_pseudo(Rng *r, char *out, size_t cap) {
    static const char *const onsets[] = {"b", "br", "c", "d", "dr", "f", "fl", "g", "gr", "h", "j", "k",
                                         "l", "m", "n", "p", "pl", "r", "s", "st", "t", "tr", "v", "w", "z"};
    static const char *const vowels[] = {"a", "e", "i", "o", "u", "ai", "ea", "ou"};
    static const char *const codas[] = {"", "", "", "n", "r", "l", "m", "s", "t", "nd", "rk"};
    size_t len = 0;
    int syllables = 2 + (int)rng_below(r, 2);
    if (cap) out[0] = '\0';
    for (int i = 0; i < syllables; i++) {
        const char *parts[3] = {onsets[rng_below(r, sizeof onsets / sizeof *onsets)],
                                vowels[rng_below(r, sizeof vowels / sizeof *vowels)],
                                codas[rng_below(r, sizeof codas / sizeof *codas)]};
        for (int k = 0; k < 3; k++) {
            size_t m = strlen(parts[k]);
            if (len + m + 1 > cap) return;
            memcpy(out + len, parts[k], m + 1);
            len += m;
        }
    }
}

/* ---------------------------------------------------------------- word pool */

struct WordPool {
    char **words; /* the built-in words point into the lists; made-up ones are owned */
    size_t n, cap, n_builtin;
    char **set; /* open-addressing set of every word so far, to keep them distinct */
    size_t set_cap;
    Rng rng;
};

static int pool_set_has(const WordPool *p, const char *w) {
    for (size_t i = hash_string(w) & (p->set_cap - 1); p->set[i]; i = (i + 1) & (p->set_cap - 1))
        if (strcmp(p->set[i], w) == 0) return 1;
    return 0;
}

static void pool_set_put(WordPool *p, char *w) {
    size_t i = hash_string(w) & (p->set_cap - 1);
    while (p->set[i]) i = (i + 1) & (p->set_cap - 1);
    p->set[i] = w;
}

static int pool_add(WordPool *p, char *w) {
    if (p->n + 1 > p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 1024;
        char **words = realloc(p->words, cap * sizeof *words);
        if (!words) return -1;
        p->words = words;
        p->cap = cap;
    }
    if (2 * (p->n + 1) > p->set_cap) { /* keep the set at most half full */
        size_t cap = p->set_cap ? p->set_cap * 2 : 4096;
        char **set = calloc(cap, sizeof *set);
        if (!set) return -1;
        free(p->set);
        p->set = set;
        p->set_cap = cap;
        for (size_t i = 0; i < p->n; i++) pool_set_put(p, p->words[i]);
    }
    p->words[p->n++] = w;
    pool_set_put(p, w);
    return 0;
}

WordPool *wordpool_new(uint64_t seed) {
    WordPool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    rng_seed(&p->rng, seed);
    const char *const *lists[] = {words_adjectives, words_nouns, words_verbs, words_common};
    const size_t sizes[] = {words_n_adjectives, words_n_nouns, words_n_verbs, words_n_common};
    for (int l = 0; l < 4; l++)
        for (size_t i = 0; i < sizes[l]; i++) {
            if (p->set && pool_set_has(p, lists[l][i])) continue;
            if (pool_add(p, (char *)lists[l][i]) != 0) {
                wordpool_free(p);
                return NULL;
            }
        }
    p->n_builtin = p->n;
    rng_shuffle(&p->rng, p->words, p->n, sizeof *p->words);
    return p;
}

const char *wordpool_get(WordPool *p, size_t i) {
    while (p->n <= i) {
        char buf[32];
        do words_pseudo(&p->rng, buf, sizeof buf);
        while (pool_set_has(p, buf));
        char *w = malloc(strlen(buf) + 1);
        if (!w) return NULL;
        strcpy(w, buf);
        if (pool_add(p, w) != 0) {
            free(w);
            return NULL;
        }
    }
    return p->words[i];
}

void wordpool_free(WordPool *p) {
    if (!p) return;
    /* built-in words were shuffled among themselves only: made-up ones follow them */
    for (size_t i = p->n_builtin; i < p->n; i++) free(p->words[i]);
    free(p->words);
    free(p->set);
    free(p);
}

/* ---------------------------------------------------------------- needle keys and values */

int value_type_parse(const char *s) {
    if (strcmp(s, "words") == 0) return VAL_WORDS;
    if (strcmp(s, "numbers") == 0) return VAL_NUMBERS;
    if (strcmp(s, "uuids") == 0) return VAL_UUIDS;
    return -1;
}

const char *value_type_name(ValueType t) {
    switch (t) {
    case VAL_WORDS: return "words";
    case VAL_NUMBERS: return "numbers";
    case VAL_UUIDS: return "uuids";
    }
    return "?";
}

void random_uuid(Rng *r, char out[37]) {
    uint64_t hi = rng_next(r), lo = rng_next(r);
    hi = (hi & ~0xf000ULL) | 0x4000ULL;                                 /* version 4 */
    lo = (lo & ~0xc000000000000000ULL) | 0x8000000000000000ULL;          /* RFC 4122 variant */
    snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(hi >> 32), (unsigned)(hi >> 16) & 0xffffu,
             (unsigned)hi & 0xffffu, (unsigned)(lo >> 48), (unsigned long long)(lo & 0xffffffffffffULL));
}

void random_value(Rng *r, ValueType t, char *out, size_t cap) {
    switch (t) {
    case VAL_WORDS:
        snprintf(out, cap, "%s-%s", words_pick(r, words_adjectives, words_n_adjectives),
                 words_pick(r, words_nouns, words_n_nouns));
        break;
    case VAL_NUMBERS: snprintf(out, cap, "%lld", (long long)rng_range(r, 1000000, 9999999)); break;
    case VAL_UUIDS: {
        char u[37];
        random_uuid(r, u);
        snprintf(out, cap, "%s", u);
        break;
    }
    }
}
