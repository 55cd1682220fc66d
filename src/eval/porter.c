/* The Porter stemmer, as nltk 3.8's PorterStemmer() in its default mode
 * (NLTK_EXTENSIONS). Written from the algorithm's description in Porter
 * (1980) and the deviations that nltk documents for that mode:
 *   - irregular forms looked up first (sky, skies -> sky; dying -> die; ...);
 *   - words of at most two letters are returned unchanged;
 *   - step 1a: a four-letter word ending in "ies" keeps "ie" (ties -> tie);
 *   - step 1b: "ied" -> "ie" in a four-letter word and "i" otherwise, and the
 *     *o condition also holds for a two-letter vowel-consonant stem;
 *   - step 1c: y -> i only after a consonant that is not the first letter;
 *   - step 2: "alli" -> "al" first and step 2 repeated, "bli" -> "ble"
 *     (not "abli"), and the extra rules "fulli" -> "ful" and "logi" -> "log".
 * Rule lists apply the first rule whose suffix matches; when its condition
 * fails the word is left as it is (later rules are not tried). */
#include <string.h>

#include "lethe/stats.h"

typedef struct {
    char *b;  /* the word being stemmed */
    size_t k; /* its current length */
} pword;

static int is_vowel_letter(char c)
{
    return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
}

/* Whether b[i] is a consonant: any letter but a, e, i, o, u, and a 'y' only
 * when it starts the word or follows a vowel. Within a run of y's the status
 * alternates, so look back to the start of the run. */
static int cons(const char *b, size_t i)
{
    if (is_vowel_letter(b[i]))
        return 0;
    if (b[i] != 'y')
        return 1;
    size_t j = i;
    while (j > 0 && b[j - 1] == 'y')
        j--;
    int first = (j == 0) ? 1 : is_vowel_letter(b[j - 1]);
    return ((i - j) & 1) ? !first : first;
}

/* m in [C](VC){m}[V] for b[0..len): the number of vowel-consonant changes. */
static int measure(const char *b, size_t len)
{
    int m = 0, prev = 1;
    for (size_t i = 0; i < len; i++) {
        int c = is_vowel_letter(b[i]) ? 0 : b[i] == 'y' ? (i == 0 ? 1 : !prev) : 1;
        if (c && !prev)
            m++;
        prev = c;
    }
    return m;
}

static int contains_vowel(const char *b, size_t len)
{
    int prev = 1;
    for (size_t i = 0; i < len; i++) {
        int c = is_vowel_letter(b[i]) ? 0 : b[i] == 'y' ? (i == 0 ? 1 : !prev) : 1;
        if (!c)
            return 1;
        prev = c;
    }
    return 0;
}

/* *d: ends with a double consonant. */
static int ends_double_cons(const char *b, size_t len)
{
    return len >= 2 && b[len - 1] == b[len - 2] && cons(b, len - 1);
}

/* *o: ends consonant-vowel-consonant with the last not w, x or y; nltk also
 * accepts a two-letter vowel-consonant word. */
static int ends_cvc(const char *b, size_t len)
{
    if (len >= 3 && cons(b, len - 3) && !cons(b, len - 2) && cons(b, len - 1)) {
        char c = b[len - 1];
        return c != 'w' && c != 'x' && c != 'y';
    }
    return len == 2 && !cons(b, 0) && cons(b, 1);
}

static int ends(const pword *w, const char *suffix)
{
    size_t n = strlen(suffix);
    return w->k >= n && memcmp(w->b + w->k - n, suffix, n) == 0;
}

/* Replace the last `cut` letters by `repl` (never longer than what it replaces). */
static void replace_tail(pword *w, size_t cut, const char *repl)
{
    size_t n = strlen(repl);
    w->k -= cut;
    memcpy(w->b + w->k, repl, n);
    w->k += n;
}

enum cond { C_NONE, C_M0, C_M1, C_ION, C_LOGI };

struct rule {
    const char *suffix, *repl;
    enum cond cond;
};

static int cond_holds(const pword *w, size_t stem_len, enum cond c)
{
    switch (c) {
    case C_NONE: return 1;
    case C_M0: return measure(w->b, stem_len) > 0;
    case C_M1: return measure(w->b, stem_len) > 1;
    case C_ION:
        return measure(w->b, stem_len) > 1 &&
               (w->b[stem_len - 1] == 's' || w->b[stem_len - 1] == 't');
    case C_LOGI: return measure(w->b, w->k - 3) > 0; /* the stem plus its "l" */
    }
    return 0;
}

/* The first rule whose suffix matches decides: applied if its condition holds. */
static void apply_rules(pword *w, const struct rule *rules, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!ends(w, rules[i].suffix))
            continue;
        size_t cut = strlen(rules[i].suffix);
        if (cond_holds(w, w->k - cut, rules[i].cond))
            replace_tail(w, cut, rules[i].repl);
        return;
    }
}

#define N_RULES(r) (sizeof(r) / sizeof((r)[0]))

static void step1a(pword *w)
{
    static const struct rule rules[] = {
        {"sses", "ss", C_NONE}, {"ies", "i", C_NONE}, {"ss", "ss", C_NONE}, {"s", "", C_NONE}};
    if (w->k == 4 && ends(w, "ies")) {
        replace_tail(w, 3, "ie");
        return;
    }
    apply_rules(w, rules, N_RULES(rules));
}

static void step1b(pword *w)
{
    if (ends(w, "ied")) {
        replace_tail(w, 3, w->k == 4 ? "ie" : "i");
        return;
    }
    if (ends(w, "eed")) {
        if (measure(w->b, w->k - 3) > 0)
            w->k -= 1; /* eed -> ee */
        return;
    }
    if (ends(w, "ed") && contains_vowel(w->b, w->k - 2))
        w->k -= 2;
    else if (ends(w, "ing") && contains_vowel(w->b, w->k - 3))
        w->k -= 3;
    else
        return;
    /* tidy the stem that "ed" or "ing" left */
    if (ends(w, "at") || ends(w, "bl") || ends(w, "iz")) {
        w->b[w->k++] = 'e';
        return;
    }
    if (ends_double_cons(w->b, w->k)) {
        char c = w->b[w->k - 1];
        if (c != 'l' && c != 's' && c != 'z')
            w->k -= 1;
        return;
    }
    if (measure(w->b, w->k) == 1 && ends_cvc(w->b, w->k))
        w->b[w->k++] = 'e';
}

static void step1c(pword *w)
{
    if (ends(w, "y") && w->k - 1 > 1 && cons(w->b, w->k - 2))
        w->b[w->k - 1] = 'i';
}

static void step2(pword *w)
{
    static const struct rule rules[] = {
        {"ational", "ate", C_M0}, {"tional", "tion", C_M0}, {"enci", "ence", C_M0},
        {"anci", "ance", C_M0},   {"izer", "ize", C_M0},    {"bli", "ble", C_M0},
        {"alli", "al", C_M0},     {"entli", "ent", C_M0},   {"eli", "e", C_M0},
        {"ousli", "ous", C_M0},   {"ization", "ize", C_M0}, {"ation", "ate", C_M0},
        {"ator", "ate", C_M0},    {"alism", "al", C_M0},    {"iveness", "ive", C_M0},
        {"fulness", "ful", C_M0}, {"ousness", "ous", C_M0}, {"aliti", "al", C_M0},
        {"iviti", "ive", C_M0},   {"biliti", "ble", C_M0},  {"fulli", "ful", C_M0},
        {"logi", "log", C_LOGI}};
    while (ends(w, "alli") && measure(w->b, w->k - 4) > 0)
        replace_tail(w, 4, "al");
    apply_rules(w, rules, N_RULES(rules));
}

static void step3(pword *w)
{
    static const struct rule rules[] = {
        {"icate", "ic", C_M0}, {"ative", "", C_M0}, {"alize", "al", C_M0}, {"iciti", "ic", C_M0},
        {"ical", "ic", C_M0},  {"ful", "", C_M0},   {"ness", "", C_M0}};
    apply_rules(w, rules, N_RULES(rules));
}

static void step4(pword *w)
{
    static const struct rule rules[] = {
        {"al", "", C_M1},   {"ance", "", C_M1}, {"ence", "", C_M1}, {"er", "", C_M1},
        {"ic", "", C_M1},   {"able", "", C_M1}, {"ible", "", C_M1}, {"ant", "", C_M1},
        {"ement", "", C_M1}, {"ment", "", C_M1}, {"ent", "", C_M1}, {"ion", "", C_ION},
        {"ou", "", C_M1},   {"ism", "", C_M1},  {"ate", "", C_M1},  {"iti", "", C_M1},
        {"ous", "", C_M1},  {"ive", "", C_M1},  {"ize", "", C_M1}};
    apply_rules(w, rules, N_RULES(rules));
}

static void step5(pword *w)
{
    if (ends(w, "e")) { /* 5a */
        int m = measure(w->b, w->k - 1);
        if (m > 1 || (m == 1 && !ends_cvc(w->b, w->k - 1)))
            w->k -= 1;
    }
    if (ends(w, "ll") && measure(w->b, w->k - 1) > 1) /* 5b */
        w->k -= 1;
}

/* nltk's irregular forms: word -> stem. */
static const char *const irregular[][2] = {
    {"sky", "sky"},         {"skies", "sky"},        {"dying", "die"},
    {"lying", "lie"},       {"tying", "tie"},        {"news", "news"},
    {"innings", "inning"},  {"inning", "inning"},    {"outings", "outing"},
    {"outing", "outing"},   {"cannings", "canning"}, {"canning", "canning"},
    {"howe", "howe"},       {"proceed", "proceed"},  {"exceed", "exceed"},
    {"succeed", "succeed"}};

size_t lethe_porter_stem(char *word, size_t len)
{
    pword w = {word, len};
    for (size_t i = 0; i < len; i++)
        if (word[i] >= 'A' && word[i] <= 'Z')
            word[i] = (char)(word[i] - 'A' + 'a');
    for (size_t i = 0; i < N_RULES(irregular); i++) {
        if (strlen(irregular[i][0]) == len && !memcmp(word, irregular[i][0], len)) {
            w.k = strlen(irregular[i][1]);
            memcpy(word, irregular[i][1], w.k);
            word[w.k] = '\0';
            return w.k;
        }
    }
    if (len > 2) {
        step1a(&w);
        step1b(&w);
        step1c(&w);
        step2(&w);
        step3(&w);
        step4(&w);
        step5(&w);
    }
    word[w.k] = '\0';
    return w.k;
}
