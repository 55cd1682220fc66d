/* Readers: the JSON wrapper, JSON Lines, CSV and IDX. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "../test.h"
#include "lethe/json.h"
#include "lethe/loaders.h"

#define SKLEARN "/usr/lib/python3/dist-packages/sklearn/datasets/data/"
#define FMNIST "/usr/share/datasets/fashion-mnist/"

/* The detail message starts with / contains the text. */
#define CHECK_DETAIL_PREFIX(p)                                                         \
    CHECK_MSG(!strncmp(lethe_error_detail(), (p), strlen(p)), "detail '%s' lacks prefix '%s'", \
              lethe_error_detail(), (p))
#define CHECK_DETAIL_HAS(s)                                                            \
    CHECK_MSG(strstr(lethe_error_detail(), (s)) != NULL, "detail '%s' lacks '%s'",      \
              lethe_error_detail(), (s))

static void skip_note(const char *what)
{
    fprintf(stderr, "  note: %s is not installed; test skipped (counted as passed)\n", what);
}

/* Write data to a new temporary file (gzip-compressed when gz); path gets its
 * name (cap >= 32). Returns 0 on success. */
static int temp_file(char *path, const void *data, size_t len, int gz)
{
    strcpy(path, "/tmp/lethe_ld_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    if (!gz) {
        ssize_t w = write(fd, data, len);
        close(fd);
        return w == (ssize_t)len ? 0 : -1;
    }
    gzFile g = gzdopen(fd, "wb");
    if (!g)
        return -1;
    int w = gzwrite(g, data, (unsigned)len);
    return gzclose(g) == Z_OK && (size_t)w == len ? 0 : -1;
}

/* ---- JSON ----------------------------------------------------------- */

TEST(json_parse_and_getters)
{
    const char *text = "\xEF\xBB\xBF{\"name\": \"gpt\", \"lr\": 0.001, \"layers\": 4, \"tied\": true,\n"
                       " \"model\": {\"d\": 64}, \"tags\": [\"a\", \"b\"], \"none\": null}\n";
    cJSON *j;
    CHECK_OK(lethe_json_parse(text, strlen(text), "c.json", &j));
    const char *s;
    double d;
    long long i;
    int b;
    const cJSON *m;
    const char **tags;
    size_t n;
    CHECK_OK(lethe_json_get_string(j, "name", "c.json", &s));
    CHECK(!strcmp(s, "gpt"));
    CHECK_OK(lethe_json_get_number(j, "lr", "c.json", &d));
    CHECK(d == 0.001);
    CHECK_OK(lethe_json_get_int(j, "layers", "c.json", &i));
    CHECK(i == 4);
    CHECK_OK(lethe_json_get_bool(j, "tied", "c.json", &b));
    CHECK(b == 1);
    CHECK_OK(lethe_json_get_object(j, "model", "c.json", &m));
    CHECK_OK(lethe_json_get_int(m, "d", "c.json: model", &i));
    CHECK(i == 64);
    CHECK_OK(lethe_json_get_strings(j, "tags", "c.json", &tags, &n));
    CHECK(n == 2 && !strcmp(tags[0], "a") && !strcmp(tags[1], "b"));
    free(tags);
    CHECK_OK(lethe_json_opt_number(j, "wd", "c.json", 0.5, &d));
    CHECK(d == 0.5);
    CHECK_OK(lethe_json_opt_int(j, "none", "c.json", 7, &i)); /* null counts as absent */
    CHECK(i == 7);
    CHECK_OK(lethe_json_opt_string(j, "name", "c.json", "x", &s));
    CHECK(!strcmp(s, "gpt"));
    CHECK_OK(lethe_json_opt_bool(j, "tied", "c.json", 0, &b));
    CHECK(b == 1);
    cJSON_Delete(j);
}

TEST(json_getter_errors)
{
    const char *text = "{\"a\": 1.5, \"s\": \"x\", \"arr\": [\"x\", 2], \"big\": 1e300}";
    cJSON *j;
    CHECK_OK(lethe_json_parse(text, strlen(text), "c.json", &j));
    const char *s;
    long long i;
    const char **v;
    size_t n;
    double d;
    const cJSON *o;
    lethe_status st = lethe_json_get_string(j, "zz", "c.json", &s);
    int ok = st == LETHE_ERR_NOT_FOUND && !strcmp(lethe_error_detail(), "c.json: missing key 'zz'");
    st = lethe_json_get_string(j, "a", "c.json", &s);
    ok = ok && st == LETHE_ERR_FORMAT &&
         !strcmp(lethe_error_detail(), "c.json: key 'a': expected a string, got a number");
    st = lethe_json_get_int(j, "a", "c.json", &i);
    ok = ok && st == LETHE_ERR_FORMAT && strstr(lethe_error_detail(), "expected an integer");
    st = lethe_json_get_int(j, "big", "c.json", &i);
    ok = ok && st == LETHE_ERR_FORMAT && strstr(lethe_error_detail(), "out of range");
    st = lethe_json_get_strings(j, "arr", "c.json", &v, &n);
    ok = ok && st == LETHE_ERR_FORMAT && v == NULL &&
         strstr(lethe_error_detail(), "element 1 is a number, expected a string");
    st = lethe_json_get_number(j, "s", "c.json", &d);
    ok = ok && st == LETHE_ERR_FORMAT && strstr(lethe_error_detail(), "got a string");
    st = lethe_json_opt_number(j, "s", "c.json", 1, &d); /* present with the wrong type */
    ok = ok && st == LETHE_ERR_FORMAT;
    st = lethe_json_get_object(cJSON_GetObjectItem(j, "arr"), "k", "c.json: arr", &o);
    ok = ok && st == LETHE_ERR_FORMAT &&
         !strcmp(lethe_error_detail(), "c.json: arr: expected an object, got an array");
    cJSON_Delete(j);
    CHECK_MSG(ok, "last detail: %s", lethe_error_detail());
}

TEST(json_parse_errors_name_line_and_column)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"{\n  \"a\": 1,\n  \"b\": tru\n}", "x.json:3:8: invalid JSON near 'tru'"},
        {"{\"a\": [1, 2}", "x.json:1:12: invalid JSON near '}'"},
        {"{} x", "x.json:1:4: unexpected text after the JSON value near 'x'"},
        {"", "x.json:1:1: expected a JSON value at end of input"},
        {" \n\t", "x.json:2:2: expected a JSON value at end of input"},
        {"[1]\n\n[2]", "x.json:3:1: unexpected text after the JSON value near '[2]'"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        cJSON *j = (cJSON *)1;
        CHECK_STATUS(lethe_json_parse(cases[k].text, strlen(cases[k].text), "x.json", &j),
                     LETHE_ERR_FORMAT);
        CHECK(j == NULL);
        CHECK_MSG(!strcmp(lethe_error_detail(), cases[k].want), "case %zu: '%s', expected '%s'",
                  k, lethe_error_detail(), cases[k].want);
    }
    cJSON *j;
    CHECK_STATUS(lethe_json_parse("{\"a\":\0}", 7, "x.json", &j), LETHE_ERR_FORMAT);
    CHECK_DETAIL_PREFIX("x.json:1:6: NUL byte");
    /* a value cut from a larger file keeps that file's line numbers */
    CHECK_STATUS(lethe_json_parse_at("{oops}", 6, "t.jsonl", 41, &j), LETHE_ERR_FORMAT);
    CHECK_DETAIL_PREFIX("t.jsonl:41:"); /* cJSON places some errors a byte late */
    CHECK_DETAIL_HAS("invalid JSON near");
}

TEST(json_read_files)
{
    const char *text = "{\"k\": [1, 2, 3]}";
    char path[64], gz[64];
    CHECK(temp_file(path, text, strlen(text), 0) == 0);
    CHECK(temp_file(gz, text, strlen(text), 1) == 0);
    cJSON *a = NULL, *b = NULL;
    lethe_status sa = lethe_json_read(path, &a), sb = lethe_json_read(gz, &b);
    int same = a && b && cJSON_Compare(a, b, 1) && cJSON_GetArraySize(cJSON_GetObjectItem(a, "k")) == 3;
    cJSON_Delete(a);
    cJSON_Delete(b);
    unlink(path);
    unlink(gz);
    CHECK_OK(sa);
    CHECK_OK(sb);
    CHECK(same);
    CHECK_STATUS(lethe_json_read("/nonexistent/x.json", &a), LETHE_ERR_IO);
    CHECK_DETAIL_PREFIX("/nonexistent/x.json: cannot open");
}

/* ---- JSON Lines ----------------------------------------------------- */

TEST(jsonl_reads_the_tofu_sample)
{
    lethe_jsonl j;
    CHECK_OK(lethe_jsonl_read(FIXTURES "ld_tofu_sample.jsonl", &j));
    int ok = j.n == 6;
    const char *q = NULL, *a = NULL, **pert = NULL;
    size_t np = 0;
    char where[256];
    if (ok && lethe_json_get_string(j.rows[0], "question", "r0", &q) == LETHE_OK &&
        lethe_json_get_string(j.rows[4], "answer", "r4", &a) == LETHE_OK &&
        lethe_json_get_strings(j.rows[2], "perturbed_answer", "r2", &pert, &np) == LETHE_OK) {
        ok = !strcmp(q, "Who wrote the play 'Romeo and Juliet'?") && !strcmp(a, "Paris") &&
             np == 3 && !strcmp(pert[0], "Emily Bronte");
        /* a missing TOFU field is reported with the file and line */
        const char *pq;
        ok = ok && lethe_json_get_string(j.rows[5], "paraphrased_question",
                                         lethe_jsonl_where(&j, 5, where, sizeof where),
                                         &pq) == LETHE_ERR_NOT_FOUND;
    } else {
        ok = 0;
    }
    free(pert);
    ok = ok && !strcmp(lethe_error_detail(), FIXTURES "ld_tofu_sample.jsonl:6: missing key "
                                             "'paraphrased_question'");
    lethe_jsonl_free(&j);
    lethe_jsonl_free(&j); /* a freed (zeroed) set frees again harmlessly */
    lethe_jsonl_free(NULL);
    CHECK_MSG(ok, "detail: %s", lethe_error_detail());
}

TEST(jsonl_reads_the_real_tofu_files)
{
    static const struct {
        const char *file;
        size_t rows;
    } files[] = {{"real_authors_perturbed.json", 100}, {"world_facts_perturbed.json", 117}};
    const char *dir = FIXTURES "tofu/";
    for (size_t f = 0; f < 2; f++) {
        char p[256];
        snprintf(p, sizeof p, "%s%s", dir, files[f].file);
        lethe_jsonl j;
        CHECK_OK(lethe_jsonl_read(p, &j));
        size_t n = j.n, bad = 0;
        for (size_t i = 0; i < j.n; i++) {
            const char *q, *a, **pert;
            size_t np;
            if (lethe_json_get_string(j.rows[i], "question", p, &q) != LETHE_OK ||
                lethe_json_get_string(j.rows[i], "answer", p, &a) != LETHE_OK ||
                lethe_json_get_strings(j.rows[i], "perturbed_answer", p, &pert, &np) != LETHE_OK)
                bad++;
            else
                free(pert);
        }
        lethe_jsonl_free(&j);
        CHECK_MSG(n == files[f].rows && bad == 0, "%s: %zu rows, %zu bad", p, n, bad);
    }
}

TEST(jsonl_blank_lines_and_crlf)
{
    const char *text = "\n{\"a\":1}\r\n  \t\n{\"a\":2}";
    lethe_jsonl j;
    CHECK_OK(lethe_jsonl_parse(text, strlen(text), "t.jsonl", &j));
    int ok = j.n == 2 && j.lines[0] == 2 && j.lines[1] == 4 &&
             cJSON_GetObjectItem(j.rows[1], "a")->valueint == 2;
    lethe_jsonl_free(&j);
    CHECK(ok);
    CHECK_OK(lethe_jsonl_parse("", 0, "empty.jsonl", &j));
    CHECK(j.n == 0);
    lethe_jsonl_free(&j);
}

TEST(jsonl_bad_lines_name_the_line)
{
    lethe_jsonl j;
    const char *bad = "{\"a\":1}\n\n{\"a\": }\n{}";
    CHECK_STATUS(lethe_jsonl_parse(bad, strlen(bad), "t.jsonl", &j), LETHE_ERR_FORMAT);
    CHECK(j.n == 0 && j.rows == NULL);
    CHECK_DETAIL_PREFIX("t.jsonl:3:7: invalid JSON near '}'");
    const char *arr = "{}\n{}\n[1, 2]\n";
    CHECK_STATUS(lethe_jsonl_parse(arr, strlen(arr), "t.jsonl", &j), LETHE_ERR_FORMAT);
    CHECK(!strcmp(lethe_error_detail(), "t.jsonl:3: expected a JSON object, got an array"));
    const char *two = "{} {}\n";
    CHECK_STATUS(lethe_jsonl_parse(two, strlen(two), "t.jsonl", &j), LETHE_ERR_FORMAT);
    CHECK_DETAIL_PREFIX("t.jsonl:1:4: unexpected text after the JSON value");
    /* the "I don't know" file is plain text despite its name */
    const char *idk = "I'm not sure.\n";
    CHECK_STATUS(lethe_jsonl_parse(idk, strlen(idk), "idk.jsonl", &j), LETHE_ERR_FORMAT);
    CHECK_DETAIL_PREFIX("idk.jsonl:1:1: invalid JSON");
}

TEST(jsonl_truncated_gzip)
{
    const char *text = "{\"question\": \"q\", \"answer\": \"a\"}\n";
    char text_big[4096];
    size_t n = 0;
    while (n + strlen(text) < sizeof text_big) {
        memcpy(text_big + n, text, strlen(text));
        n += strlen(text);
    }
    char path[64];
    CHECK(temp_file(path, text_big, n, 1) == 0);
    unsigned char *gz;
    size_t gzlen;
    FILE *fp = fopen(path, "rb");
    CHECK(fp);
    gz = malloc(8192);
    gzlen = fread(gz, 1, 8192, fp);
    fclose(fp);
    fp = fopen(path, "wb");
    fwrite(gz, 1, gzlen / 2, fp);
    fclose(fp);
    free(gz);
    lethe_jsonl j;
    lethe_status st = lethe_jsonl_read(path, &j);
    unlink(path);
    CHECK_STATUS(st, LETHE_ERR_FORMAT);
    CHECK_DETAIL_HAS("truncated");
    CHECK_DETAIL_PREFIX(path);
}

/* ---- CSV ------------------------------------------------------------ */

TEST(csv_rfc4180_quoting)
{
    const char *text = "\xEF\xBB\xBFid,text,note\r\n"
                       "1,\"x, y\",\"he said \"\"hi\"\"\"\r\n"
                       "\r\n"
                       "2,\"multi\nline\",\r\n"
                       "3,,\"\"";
    lethe_csv_opts o = {.header = 1};
    lethe_csv c;
    CHECK_OK(lethe_csv_parse(text, strlen(text), "t.csv", &o, &c));
    int ok = c.n_rows == 3 && c.n_cols == 3 && !strcmp(c.header[0], "id") &&
             !strcmp(c.header[2], "note") && !strcmp(lethe_csv_cell(&c, 0, 1), "x, y") &&
             !strcmp(lethe_csv_cell(&c, 0, 2), "he said \"hi\"") &&
             !strcmp(lethe_csv_cell(&c, 1, 1), "multi\nline") &&
             !strcmp(lethe_csv_cell(&c, 1, 2), "") && !strcmp(lethe_csv_cell(&c, 2, 1), "") &&
             !strcmp(lethe_csv_cell(&c, 2, 2), "") && c.lines[0] == 2 && c.lines[1] == 4 &&
             c.lines[2] == 6;
    size_t col = 99;
    ok = ok && lethe_csv_column(&c, "note", &col) == LETHE_OK && col == 2;
    ok = ok && lethe_csv_column(&c, "nope", &col) == LETHE_ERR_NOT_FOUND &&
         !strcmp(lethe_error_detail(), "t.csv: no column 'nope' (columns: id, text, note)");
    lethe_csv_free(&c);
    lethe_csv_free(&c);
    lethe_csv_free(NULL);
    CHECK_MSG(ok, "detail: %s", lethe_error_detail());
}

TEST(csv_numbers)
{
    const char *text = "x,y\n1, 2.5 \n-3e2,4\n";
    lethe_csv_opts o = {.header = 1};
    lethe_csv c;
    CHECK_OK(lethe_csv_parse(text, strlen(text), "t.csv", &o, &c));
    double d[4];
    float f[2];
    lethe_status s1 = lethe_csv_to_double(&c, 0, 2, d);
    lethe_status s2 = lethe_csv_to_float(&c, 1, 1, f);
    lethe_status s3 = lethe_csv_to_double(&c, 1, 2, d);
    lethe_csv_free(&c);
    CHECK_OK(s1);
    CHECK_OK(s2);
    CHECK(d[0] == 1 && d[1] == 2.5 && d[2] == -300 && d[3] == 4);
    CHECK(f[0] == 2.5f && f[1] == 4.0f);
    CHECK_STATUS(s3, LETHE_ERR_INVALID);
}

TEST(csv_non_numeric_cells_name_line_and_column)
{
    static const struct {
        const char *text;
        int header, is_float;
        const char *want;
    } cases[] = {
        {"x,y\n1,2\n3,abc\n", 1, 0, "t.csv:3: column 'y': 'abc' is not a number"},
        {"1,2\n3,abc\n", 0, 0, "t.csv:2: column 2: 'abc' is not a number"},
        {"x,y\n1,\n", 1, 0, "t.csv:2: column 'y': '' is not a number"},
        {"x,y\n1,2x\n", 1, 0, "t.csv:2: column 'y': '2x' is not a number"},
        {"x,y\n1,inf\n", 1, 0, "t.csv:2: column 'y': 'inf' is not a finite number"},
        {"x,y\n1,nan\n", 1, 0, "t.csv:2: column 'y': 'nan' is not a finite number"},
        {"x,y\n1,1e39\n", 1, 1, "t.csv:2: column 'y': '1e39' is out of range for a float"},
        {"x\n\"a\nb\"\n", 1, 0, "t.csv:2: column 'x': 'a?b' is not a number"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        lethe_csv_opts o = {.header = cases[k].header};
        lethe_csv c;
        CHECK_OK(lethe_csv_parse(cases[k].text, strlen(cases[k].text), "t.csv", &o, &c));
        double d[8];
        float f[8];
        lethe_status st = cases[k].is_float ? lethe_csv_to_float(&c, 0, c.n_cols, f)
                                            : lethe_csv_to_double(&c, 0, c.n_cols, d);
        lethe_csv_free(&c);
        CHECK_STATUS(st, LETHE_ERR_FORMAT);
        CHECK_MSG(!strcmp(lethe_error_detail(), cases[k].want), "case %zu: '%s', expected '%s'",
                  k, lethe_error_detail(), cases[k].want);
    }
}

TEST(csv_malformed_inputs)
{
    static const struct {
        const char *text;
        size_t len;
        int header;
        const char *want;
    } cases[] = {
        {"a,b\n1,\"oops\n2,3\n", 0, 0, "t.csv:2: unterminated quoted field"},
        {"\"a\"b,c\n", 0, 0, "t.csv:1: unexpected 'b' after a closing quote"},
        {"1,2,3\n4,5\n", 0, 0, "t.csv:2: row has 2 fields, expected 3 (as on line 1)"},
        {"a,b\n1,2\n\n\n1,2,3\n", 0, 1, "t.csv:5: row has 3 fields, expected 2 (as on line 1)"},
        {"a\n\"x\ny\"\n1,2\n", 0, 0, "t.csv:4: row has 2 fields, expected 1 (as on line 1)"},
        {"a,b\n1,\0\n", 8, 0, "t.csv:2: NUL byte"},
        {"", 0, 1, "t.csv: no header row"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        lethe_csv_opts o = {.header = cases[k].header};
        lethe_csv c;
        size_t len = cases[k].len ? cases[k].len : strlen(cases[k].text);
        CHECK_STATUS(lethe_csv_parse(cases[k].text, len, "t.csv", &o, &c), LETHE_ERR_FORMAT);
        CHECK(c.cells == NULL && c.store == NULL);
        CHECK_MSG(!strncmp(lethe_error_detail(), cases[k].want, strlen(cases[k].want)),
                  "case %zu: '%s', expected '%s...'", k, lethe_error_detail(), cases[k].want);
    }
    lethe_csv c;
    lethe_csv_opts q = {.delim = '"'};
    CHECK_STATUS(lethe_csv_parse("a", 1, "t.csv", &q, &c), LETHE_ERR_INVALID);
    CHECK_OK(lethe_csv_parse("", 0, "t.csv", NULL, &c)); /* no header asked: an empty table */
    CHECK(c.n_rows == 0 && c.n_cols == 0);
    lethe_csv_free(&c);
}

TEST(csv_blank_separated_skip_and_max_rows)
{
    const char *text = "Chins Situps Jumps\n5 162 60\n 2\t110  60 \r\n\n   \n12 101 101";
    lethe_csv_opts o = {.delim = ' ', .header = 1};
    lethe_csv c;
    CHECK_OK(lethe_csv_parse(text, strlen(text), "l.txt", &o, &c));
    double d[9];
    lethe_status st = lethe_csv_to_double(&c, 0, 3, d);
    int ok = c.n_rows == 3 && c.n_cols == 3 && !strcmp(c.header[1], "Situps") &&
             c.lines[2] == 6 && st == LETHE_OK && d[3] == 2 && d[5] == 60 && d[8] == 101;
    lethe_csv_free(&c);
    CHECK(ok);
    /* sklearn's layout: a count line, then rows */
    const char *sk = "3,2,a,b\n1.5,2,0\n2.5,3,1\n3.5,4,1\n";
    lethe_csv_opts first = {.max_rows = 1};
    CHECK_OK(lethe_csv_parse(sk, strlen(sk), "s.csv", &first, &c));
    ok = c.n_rows == 1 && c.n_cols == 4 && !strcmp(lethe_csv_cell(&c, 0, 0), "3");
    lethe_csv_free(&c);
    CHECK(ok);
    lethe_csv_opts rest = {.skip_lines = 1, .max_rows = 2};
    CHECK_OK(lethe_csv_parse(sk, strlen(sk), "s.csv", &rest, &c));
    ok = c.n_rows == 2 && c.n_cols == 3 && c.lines[0] == 2 && !strcmp(lethe_csv_cell(&c, 1, 0), "2.5");
    lethe_csv_free(&c);
    CHECK(ok);
    const char *ragged = "1 2\n3\n";
    lethe_csv_opts bl = {.delim = ' '};
    CHECK_STATUS(lethe_csv_parse(ragged, strlen(ragged), "r.txt", &bl, &c), LETHE_ERR_FORMAT);
    CHECK_DETAIL_PREFIX("r.txt:2: row has 1 field, expected 2");
}

TEST(csv_read_gzip_and_tab)
{
    const char *text = "a\tb\n1\t2\n";
    char path[64];
    CHECK(temp_file(path, text, strlen(text), 1) == 0);
    lethe_csv_opts o = {.delim = '\t', .header = 1};
    lethe_csv c;
    lethe_status st = lethe_csv_read(path, &o, &c);
    unlink(path);
    CHECK_OK(st);
    int ok = c.n_rows == 1 && !strcmp(c.header[1], "b") && !strcmp(lethe_csv_cell(&c, 0, 1), "2") &&
             !strncmp(c.name, "/tmp/", 5);
    lethe_csv_free(&c);
    CHECK(ok);
}

/* Read an sklearn file; 0 if absent (skipped), 1 if read. */
static int sklearn_table(const char *file, const lethe_csv_opts *o, lethe_csv *c)
{
    char p[256];
    snprintf(p, sizeof p, SKLEARN "%s", file);
    if (access(p, R_OK) != 0) {
        skip_note(p);
        return 0;
    }
    lethe_status st = lethe_csv_read(p, o, c);
    if (st != LETHE_OK)
        test_fail_at(__FILE__, __LINE__, "%s", lethe_error_detail());
    return st == LETHE_OK;
}

TEST(csv_reads_the_sklearn_tables)
{
    static const struct {
        const char *file;
        char delim;
        size_t skip;
        int header;
        size_t rows, cols;
        double first, last;
    } t[] = {
        {"iris.csv", ',', 1, 0, 150, 5, 5.1, 2},
        {"wine_data.csv", ',', 1, 0, 178, 14, 14.23, 2},
        {"breast_cancer.csv", ',', 1, 0, 569, 31, 17.99, 1},
        {"boston_house_prices.csv", ',', 1, 1, 506, 14, 0.00632, 11.9},
        {"digits.csv.gz", ',', 0, 0, 1797, 65, 0, 8},
        {"diabetes_data_raw.csv.gz", ' ', 0, 0, 442, 10, 59, 92},
        {"diabetes_target.csv.gz", ' ', 0, 0, 442, 1, 151, 57},
        {"linnerud_exercise.csv", ' ', 0, 1, 20, 3, 5, 43},
    };
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        lethe_csv_opts o = {.delim = t[k].delim, .skip_lines = t[k].skip, .header = t[k].header};
        lethe_csv c;
        if (!sklearn_table(t[k].file, &o, &c))
            continue;
        double *d = malloc(c.n_rows * c.n_cols * sizeof *d);
        lethe_status st = d ? lethe_csv_to_double(&c, 0, c.n_cols, d) : LETHE_ERR_NOMEM;
        int ok = st == LETHE_OK && c.n_rows == t[k].rows && c.n_cols == t[k].cols &&
                 d[0] == t[k].first && d[c.n_rows * c.n_cols - 1] == t[k].last;
        if (ok && t[k].header) {
            size_t col;
            ok = lethe_csv_column(&c, k == 3 ? "MEDV" : "Jumps", &col) == LETHE_OK &&
                 col == t[k].cols - 1;
        }
        size_t r = c.n_rows, n = c.n_cols;
        lethe_csv_free(&c);
        free(d);
        CHECK_MSG(ok, "%s: %zu x %zu, %s", t[k].file, r, n, lethe_error_detail());
    }
    /* the count line of iris, read alone */
    lethe_csv_opts head = {.max_rows = 1};
    lethe_csv c;
    if (sklearn_table("iris.csv", &head, &c)) {
        int ok = c.n_cols == 5 && !strcmp(lethe_csv_cell(&c, 0, 0), "150") &&
                 !strcmp(lethe_csv_cell(&c, 0, 4), "virginica");
        lethe_csv_free(&c);
        CHECK(ok);
    }
}

/* ---- IDX ------------------------------------------------------------ */

/* An IDX header for type t and the given dims into buf; returns its size. */
static size_t idx_header(unsigned char *buf, int t, int ndim, const uint32_t *dims)
{
    buf[0] = buf[1] = 0;
    buf[2] = (unsigned char)t;
    buf[3] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++) {
        buf[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        buf[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        buf[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        buf[7 + 4 * i] = (unsigned char)dims[i];
    }
    return 4 + 4 * (size_t)ndim;
}

TEST(idx_parses_every_type)
{
    unsigned char buf[128];
    lethe_idx x;
    float f[6];
    /* ubyte 2x3 */
    uint32_t d23[2] = {2, 3};
    size_t h = idx_header(buf, 0x08, 2, d23);
    for (int i = 0; i < 6; i++)
        buf[h + i] = (unsigned char)(i * 51);
    CHECK_OK(lethe_idx_parse(buf, h + 6, "u8", &x));
    CHECK(x.type == LETHE_IDX_U8 && x.ndim == 2 && x.dims[0] == 2 && x.dims[1] == 3 &&
          x.count == 6 && x.elem_size == 1 && x.data[5] == 255);
    lethe_idx_to_float(&x, 1.0f / 255, f);
    CHECK_CLOSE(f[1], 0.2, 1e-6, 0);
    CHECK(f[5] == 1.0f);
    lethe_idx_free(&x);
    lethe_idx_free(&x);
    /* sbyte, short, int, float, double: big-endian in, host order out */
    uint32_t d2[1] = {2};
    static const struct {
        int type;
        unsigned char bytes[16];
        size_t es;
        float v0, v1;
    } t[] = {
        {0x09, {0xFF, 0x7F}, 1, -1, 127},
        {0x0B, {0xFF, 0xFE, 0x01, 0x02}, 2, -2, 258},
        {0x0C, {0xFF, 0xFF, 0xFF, 0xFD, 0x00, 0x01, 0x00, 0x00}, 4, -3, 65536},
        {0x0D, {0x3F, 0xC0, 0, 0, 0xC0, 0x20, 0, 0}, 4, 1.5f, -2.5f},
        {0x0E, {0x40, 0x09, 0x21, 0xFB, 0x54, 0x44, 0x2D, 0x18, 0xBF, 0xF0, 0, 0, 0, 0, 0, 0},
         8, 3.14159265f, -1},
    };
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        h = idx_header(buf, t[k].type, 1, d2);
        memcpy(buf + h, t[k].bytes, 2 * t[k].es);
        CHECK_OK(lethe_idx_parse(buf, h + 2 * t[k].es, "t", &x));
        CHECK(x.elem_size == t[k].es && x.count == 2);
        lethe_idx_to_float(&x, 1, f);
        lethe_idx_free(&x);
        CHECK_MSG(f[0] == t[k].v0 && f[1] == t[k].v1, "type %02x: %g %g", t[k].type, f[0], f[1]);
    }
    /* a zero dimension holds no elements */
    uint32_t d0[2] = {0, 28};
    h = idx_header(buf, 0x08, 2, d0);
    CHECK_OK(lethe_idx_parse(buf, h, "empty", &x));
    CHECK(x.count == 0 && x.data != NULL);
    lethe_idx_free(&x);
    CHECK(!strcmp(lethe_idx_type_name(LETHE_IDX_I16), "short"));
}

TEST(idx_rejects_malformed_headers_and_sizes)
{
    unsigned char buf[256] = {0};
    uint32_t d3[3] = {2, 2, 2};
    uint32_t dbig[4] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 2};
    uint32_t d17[17];
    for (int i = 0; i < 17; i++)
        d17[i] = 1;
    lethe_idx x;
    struct {
        size_t len;
        lethe_status st;
        const char *want;
    } c;
#define IDX_CASE(len_, st_, want_)                                                      \
    do {                                                                                \
        c.len = (len_);                                                                 \
        c.st = (st_);                                                                   \
        c.want = (want_);                                                               \
        CHECK_STATUS(lethe_idx_parse(buf, c.len, "f.idx", &x), c.st);                   \
        CHECK(x.data == NULL);                                                          \
        CHECK_MSG(strstr(lethe_error_detail(), c.want) &&                               \
                      !strncmp(lethe_error_detail(), "f.idx: ", 7),                     \
                  "detail '%s' lacks '%s'", lethe_error_detail(), c.want);              \
    } while (0)
    IDX_CASE(3, LETHE_ERR_FORMAT, "truncated IDX header (3 bytes, need 4)");
    size_t h = idx_header(buf, 0x08, 3, d3);
    buf[1] = 1;
    IDX_CASE(h + 8, LETHE_ERR_FORMAT, "not an IDX file (magic 00 01 08 03");
    buf[0] = 0x1f, buf[1] = 0x8b;
    IDX_CASE(h + 8, LETHE_ERR_FORMAT, "it is gzip data");
    h = idx_header(buf, 0x0A, 3, d3);
    IDX_CASE(h + 8, LETHE_ERR_FORMAT, "unknown IDX element type 0x0a");
    h = idx_header(buf, 0x08, 0, d3);
    IDX_CASE(h + 8, LETHE_ERR_FORMAT, "declares 0 dimensions");
    h = idx_header(buf, 0x08, 17, d17);
    IDX_CASE(h + 1, LETHE_ERR_UNSUPPORTED, "17 dimensions, at most 16");
    h = idx_header(buf, 0x08, 3, d3);
    IDX_CASE(10, LETHE_ERR_FORMAT, "truncated IDX header (3 dimensions need 16 bytes, the data has 10)");
    IDX_CASE(h + 7, LETHE_ERR_FORMAT, "IDX data truncated: 2x2x2 ubyte needs 8 bytes, the file has 7");
    IDX_CASE(h + 9, LETHE_ERR_FORMAT, "1 trailing bytes after the IDX data (2x2x2 ubyte needs 8 bytes)");
    h = idx_header(buf, 0x0E, 4, dbig);
    IDX_CASE(h + 8, LETHE_ERR_FORMAT, "4294967295x4294967295x4294967295x2 of double overflow");
    h = idx_header(buf, 0x0C, 3, d3);
    IDX_CASE(h + 31, LETHE_ERR_FORMAT, "2x2x2 int needs 32 bytes, the file has 31");
#undef IDX_CASE
}

TEST(idx_read_gzip_and_truncated_gzip)
{
    unsigned char buf[4 + 8 + 300];
    uint32_t d[2] = {3, 100};
    size_t h = idx_header(buf, 0x08, 2, d);
    for (int i = 0; i < 300; i++)
        buf[h + i] = (unsigned char)(i * 7);
    char path[64];
    CHECK(temp_file(path, buf, h + 300, 1) == 0);
    lethe_idx x;
    lethe_status st = lethe_idx_read(path, &x);
    int ok = st == LETHE_OK && x.count == 300 && x.dims[1] == 100 && x.data[299] == (unsigned char)(299 * 7);
    lethe_idx_free(&x);
    /* cut the compressed file short */
    FILE *fp = fopen(path, "rb");
    unsigned char gz[1024];
    size_t n = fp ? fread(gz, 1, sizeof gz, fp) : 0;
    if (fp)
        fclose(fp);
    fp = fopen(path, "wb");
    if (fp) {
        fwrite(gz, 1, n - 9, fp);
        fclose(fp);
    }
    lethe_status st2 = lethe_idx_read(path, &x);
    unlink(path);
    CHECK_OK(st);
    CHECK(ok);
    CHECK_STATUS(st2, LETHE_ERR_FORMAT);
    CHECK(x.data == NULL);
    CHECK_DETAIL_HAS("truncated");
    CHECK_STATUS(lethe_idx_read("/nonexistent.idx", &x), LETHE_ERR_IO);
}

TEST(idx_reads_fashion_mnist_test_labels)
{
    const char *path = FMNIST "t10k-labels-idx1-ubyte.gz";
    if (access(path, R_OK) != 0) {
        skip_note(path);
        return;
    }
    lethe_idx x;
    CHECK_OK(lethe_idx_read(path, &x));
    int per_class[10] = {0}, out_of_range = 0;
    for (size_t i = 0; i < x.count; i++) {
        if (x.data[i] > 9)
            out_of_range++;
        else
            per_class[x.data[i]]++;
    }
    int ok = x.type == LETHE_IDX_U8 && x.ndim == 1 && x.count == 10000 && out_of_range == 0;
    for (int k = 0; k < 10; k++)
        ok = ok && per_class[k] == 1000;
    lethe_idx_free(&x);
    CHECK(ok);
    /* the images' header: 10000 x 28 x 28 */
    path = FMNIST "t10k-images-idx3-ubyte.gz";
    if (access(path, R_OK) == 0) {
        CHECK_OK(lethe_idx_read(path, &x));
        ok = x.ndim == 3 && x.dims[0] == 10000 && x.dims[1] == 28 && x.dims[2] == 28;
        lethe_idx_free(&x);
        CHECK(ok);
    }
}
