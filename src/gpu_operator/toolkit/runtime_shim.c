/* gpu-operator's nvidia-container-runtime: an OCI runtime shim (installed by `gpu-operator toolkit
 * install` as <ROOT>/toolkit/nvidia-container-runtime{,.cdi,.legacy}).
 *
 * On `create` it reads the bundle's config.json, resolves the GPUs the container asked for
 * (NVIDIA_VISIBLE_DEVICES, mounts under /var/run/nvidia-container-devices, cdi.k8s.io annotations),
 * applies the matching CDI edits (JSON specs in `spec-dirs`) to the OCI spec, writes it back
 * atomically and execs the low-level runtime (the first of `runtimes` found). Every other verb,
 * and every container that asked for no GPU, is exec'd straight through: a non-GPU config.json
 * is never rewritten (the file is not even parsed unless it names a GPU request marker).
 *
 * Compiled (static, no dependencies beyond libc) because it sits in the path of every container
 * start: see docs/performance.md for the measured cost. Config: upstream's config.toml
 * ([nvidia-container-runtime] mode, runtimes, log-level, debug; modes.cdi default-kind,
 * annotation-prefixes, spec-dirs; the two accept-nvidia-visible-devices-* keys).
 * Written defensively although containerd/CRI-O/Docker write its input: bounded nesting, every
 * allocation checked, input data in growable buffers (fixed ones only for messages, truncated by
 * snprintf). The tests run it on truncated and hostile files; ASan/UBSan found nothing. */

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define MAX_DEPTH 256
#define DEVICES_ROOT "/var/run/nvidia-container-devices"

/* ---------------------------------------------------------------- memory, strings */

static void *xalloc(size_t n) {
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        fputs("nvidia-container-runtime: out of memory\n", stderr);
        _exit(125);
    }
    return p;
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fputs("nvidia-container-runtime: out of memory\n", stderr);
        _exit(125);
    }
    return q;
}

static char *xstrndup(const char *s, size_t n) {
    char *d = xalloc(n + 1);
    memcpy(d, s, n);
    return d;
}

typedef struct {
    char *p;
    size_t n, cap;
} Buf;

static void buf_put(Buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void buf_str(Buf *b, const char *s) { buf_put(b, s, strlen(s)); }

static void buf_fmt(Buf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        buf_put(b, small, (size_t)n);
        return;
    }
    char *big = xalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf_put(b, big, (size_t)n);
    free(big);
}

typedef struct {
    char **v;
    size_t n;
} Strs;

static void strs_add(Strs *s, const char *v) {
    s->v = xrealloc(s->v, (s->n + 1) * sizeof *s->v);
    s->v[s->n++] = xstrndup(v, strlen(v));
}

static int strs_has(const Strs *s, const char *v) {
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], v)) return 1;
    return 0;
}

static char *read_file(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    Buf b = {0};
    char chunk[65536];
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            close(fd);
            free(b.p);
            return NULL;
        }
        if (r == 0) break;
        buf_put(&b, chunk, (size_t)r);
    }
    close(fd);
    if (!b.p) b.p = xalloc(1);
    *len = b.n;
    return b.p;
}

/* ---------------------------------------------------------------- JSON */

enum { J_NULL, J_FALSE, J_TRUE, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct J J;
struct J {
    int t;
    char *s; /* string bytes (decoded) or the number's literal text */
    size_t n;
    J **items; /* array items / object values */
    J **keys;  /* object keys (J_STR) */
    size_t len, cap;
};

static J *j_new(int t) {
    J *j = xalloc(sizeof *j);
    j->t = t;
    return j;
}

static J *j_str(const char *s) {
    J *j = j_new(J_STR);
    j->n = strlen(s);
    j->s = xstrndup(s, j->n);
    return j;
}

static J *j_int(long long v) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%lld", v);
    J *j = j_new(J_NUM);
    j->s = xstrndup(tmp, (size_t)n);
    j->n = (size_t)n;
    return j;
}

static void j_push(J *a, J *key, J *v) {
    if (a->len == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 8;
        a->items = xrealloc(a->items, a->cap * sizeof *a->items);
        if (a->t == J_OBJ) a->keys = xrealloc(a->keys, a->cap * sizeof *a->keys);
    }
    if (a->t == J_OBJ) a->keys[a->len] = key;
    a->items[a->len++] = v;
}

static J *j_get(const J *o, const char *key) {
    if (!o || o->t != J_OBJ) return NULL;
    size_t kn = strlen(key);
    for (size_t i = o->len; i-- > 0;) /* the last duplicate wins, as in Go */
        if (o->keys[i]->n == kn && !memcmp(o->keys[i]->s, key, kn)) return o->items[i];
    return NULL;
}

static void j_set(J *o, const char *key, J *v) {
    size_t kn = strlen(key);
    for (size_t i = 0; i < o->len; i++)
        if (o->keys[i]->n == kn && !memcmp(o->keys[i]->s, key, kn)) {
            o->items[i] = v;
            return;
        }
    j_push(o, j_str(key), v);
}

/* o[key] as a container of type t, created (or replaced if it is null) when missing */
static J *j_child(J *o, const char *key, int t) {
    J *c = j_get(o, key);
    if (c && c->t == t) return c;
    if (c && c->t != J_NULL) return NULL;
    c = j_new(t);
    j_set(o, key, c);
    return c;
}

static const char *j_cstr(const J *j) { return j && j->t == J_STR ? j->s : NULL; }

typedef struct {
    const char *p, *end;
    const char *err;
} Parser;

static void skip_ws(Parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static void put_utf8(Buf *b, unsigned cp) {
    char o[4];
    if (cp < 0x80) {
        o[0] = (char)cp;
        buf_put(b, o, 1);
    } else if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        buf_put(b, o, 2);
    } else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        buf_put(b, o, 3);
    } else {
        o[0] = (char)(0xF0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (char)(0x80 | (cp & 0x3F));
        buf_put(b, o, 4);
    }
}

static J *parse_string(Parser *ps) {
    ps->p++; /* opening quote */
    Buf b = {0};
    buf_put(&b, "", 0);
    while (ps->p < ps->end) {
        char c = *ps->p++;
        if (c == '"') {
            J *j = j_new(J_STR);
            j->s = b.p;
            j->n = b.n;
            return j;
        }
        if ((unsigned char)c < 0x20) break;
        if (c != '\\') {
            buf_put(&b, &c, 1);
            continue;
        }
        if (ps->p >= ps->end) break;
        char e = *ps->p++;
        const char *simple = NULL;
        switch (e) {
        case '"': simple = "\""; break;
        case '\\': simple = "\\"; break;
        case '/': simple = "/"; break;
        case 'b': simple = "\b"; break;
        case 'f': simple = "\f"; break;
        case 'n': simple = "\n"; break;
        case 'r': simple = "\r"; break;
        case 't': simple = "\t"; break;
        case 'u': {
            unsigned cp, lo;
            if (ps->end - ps->p < 4 || hex4(ps->p, &cp)) goto bad;
            ps->p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && ps->end - ps->p >= 6 && ps->p[0] == '\\' &&
                ps->p[1] == 'u' && !hex4(ps->p + 2, &lo) && lo >= 0xDC00 && lo < 0xE000) {
                ps->p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xD800 && cp < 0xE000) {
                cp = 0xFFFD;
            }
            put_utf8(&b, cp);
            continue;
        }
        default: goto bad;
        }
        buf_put(&b, simple, 1);
    }
bad:
    free(b.p);
    ps->err = "bad string";
    return NULL;
}

static J *parse_value(Parser *ps, int depth);

static J *parse_container(Parser *ps, int depth, int t) {
    char close = t == J_ARR ? ']' : '}';
    J *j = j_new(t);
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return j;
    }
    for (;;) {
        J *key = NULL;
        skip_ws(ps);
        if (t == J_OBJ) {
            if (ps->p >= ps->end || *ps->p != '"') break;
            key = parse_string(ps);
            if (!key) return NULL;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') break;
            ps->p++;
        }
        J *v = parse_value(ps, depth + 1);
        if (!v) return NULL;
        j_push(j, key, v);
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            return j;
        }
        break;
    }
    if (!ps->err) ps->err = t == J_ARR ? "bad array" : "bad object";
    return NULL;
}

static J *parse_value(Parser *ps, int depth) {
    if (depth > MAX_DEPTH) {
        ps->err = "nested too deeply";
        return NULL;
    }
    skip_ws(ps);
    if (ps->p >= ps->end) {
        ps->err = "unexpected end";
        return NULL;
    }
    char c = *ps->p;
    if (c == '{') return parse_container(ps, depth, J_OBJ);
    if (c == '[') return parse_container(ps, depth, J_ARR);
    if (c == '"') return parse_string(ps);
    static const struct {
        const char *lit;
        int t;
    } lits[] = {{"null", J_NULL}, {"true", J_TRUE}, {"false", J_FALSE}};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(lits[i].lit);
        if ((size_t)(ps->end - ps->p) >= n && !memcmp(ps->p, lits[i].lit, n)) {
            ps->p += n;
            return j_new(lits[i].t);
        }
    }
    const char *start = ps->p;
    if (*ps->p == '-') ps->p++;
    while (ps->p < ps->end && strchr("0123456789.eE+-", *ps->p)) ps->p++;
    if (ps->p == start || (ps->p == start + 1 && *start == '-')) {
        ps->err = "unexpected character";
        return NULL;
    }
    J *j = j_new(J_NUM);
    j->s = xstrndup(start, (size_t)(ps->p - start));
    j->n = (size_t)(ps->p - start);
    return j;
}

static J *json_parse(const char *text, size_t n, const char **err) {
    Parser ps = {text, text + n, NULL};
    J *j = parse_value(&ps, 0);
    if (j) {
        skip_ws(&ps);
        if (ps.p != ps.end) {
            j = NULL;
            ps.err = "trailing data";
        }
    }
    if (!j) *err = ps.err ? ps.err : "invalid JSON";
    return j;
}

static void dump_string(Buf *b, const char *s, size_t n) {
    buf_put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        buf_put(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': buf_str(b, "\\\""); break;
        case '\\': buf_str(b, "\\\\"); break;
        case '\n': buf_str(b, "\\n"); break;
        case '\r': buf_str(b, "\\r"); break;
        case '\t': buf_str(b, "\\t"); break;
        default: buf_fmt(b, "\\u%04x", c);
        }
    }
    buf_put(b, s + run, n - run);
    buf_put(b, "\"", 1);
}

static void json_dump(Buf *b, const J *j) {
    switch (j->t) {
    case J_NULL: buf_str(b, "null"); break;
    case J_TRUE: buf_str(b, "true"); break;
    case J_FALSE: buf_str(b, "false"); break;
    case J_NUM: buf_put(b, j->s, j->n); break;
    case J_STR: dump_string(b, j->s, j->n); break;
    case J_ARR:
    case J_OBJ:
        buf_put(b, j->t == J_ARR ? "[" : "{", 1);
        for (size_t i = 0; i < j->len; i++) {
            if (i) buf_put(b, ",", 1);
            if (j->t == J_OBJ) {
                dump_string(b, j->keys[i]->s, j->keys[i]->n);
                buf_put(b, ":", 1);
            }
            json_dump(b, j->items[i]);
        }
        buf_put(b, j->t == J_ARR ? "]" : "}", 1);
    }
}

/* ---------------------------------------------------------------- config.toml (subset) */

typedef struct {
    char *mode;
    Strs runtimes;
    char *log_level;
    char *debug;
    char *default_kind;
    Strs annotation_prefixes;
    Strs spec_dirs;
    int accept_envvar_unprivileged;
    int accept_volume_mounts;
    char *path;    /* the file read, or NULL */
    char *error;   /* "<file>:<line>: <problem>", or NULL */
} Config;

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n')) *--e = 0;
    return s;
}

/* A TOML basic or literal string at *p; the value, *p moved past it; NULL if malformed. */
static char *toml_string(char **p) {
    char q = **p;
    if (q != '"' && q != '\'') return NULL;
    Buf b = {0};
    buf_put(&b, "", 0);
    char *s = *p + 1;
    for (; *s && *s != q; s++) {
        if (q == '"' && *s == '\\' && s[1]) {
            s++;
            char c = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s;
            buf_put(&b, &c, 1);
        } else {
            buf_put(&b, s, 1);
        }
    }
    if (*s != q) {
        free(b.p);
        return NULL;
    }
    *p = s + 1;
    return b.p;
}

static int toml_strings(char *v, Strs *out) {
    /* [ "a", 'b', ] with comments stripped by the caller */
    if (*v != '[') return -1;
    char *p = v + 1;
    out->n = 0;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (*p == ']') return 0;
        char *s = toml_string(&p);
        if (!s) return -1;
        strs_add(out, s);
        free(s);
    }
}

static void strip_comment(char *line) {
    char q = 0;
    for (char *s = line; *s; s++) {
        if (q) {
            if (*s == '\\' && q == '"' && s[1]) s++;
            else if (*s == q) q = 0;
        } else if (*s == '"' || *s == '\'') {
            q = *s;
        } else if (*s == '#') {
            *s = 0;
            return;
        }
    }
}

static void config_defaults(Config *c) {
    memset(c, 0, sizeof *c);
    c->mode = "auto";
    strs_add(&c->runtimes, "docker-runc");
    strs_add(&c->runtimes, "runc");
    strs_add(&c->runtimes, "crun");
    c->log_level = "info";
    c->debug = "/dev/null";
    c->default_kind = "nvidia.com/gpu";
    strs_add(&c->annotation_prefixes, "cdi.k8s.io/");
    strs_add(&c->spec_dirs, "/etc/cdi");
    strs_add(&c->spec_dirs, "/var/run/cdi");
    c->accept_envvar_unprivileged = 1;
    c->accept_volume_mounts = 0;
}

static void config_error(Config *c, int line, const char *what) {
    Buf b = {0};
    buf_fmt(&b, "%s:%d: %s", c->path, line, what);
    c->error = b.p;
}

/* One `key = value` of the file (section already prefixed); 0, or -1 with c->error set. */
static int config_set(Config *c, int at, const char *full, char *value) {
    int is_bool = !strcmp(value, "true") || !strcmp(value, "false");
    char *str_value = NULL;
    if (*value == '"' || *value == '\'') {
        char *v = value;
        str_value = toml_string(&v);
        if (!str_value || *trim(v)) {
            config_error(c, at, "bad string value");
            return -1;
        }
    }
    Strs *list = NULL;
    char **str_field = NULL;
    int *bool_field = NULL;
    if (!strcmp(full, "nvidia-container-runtime.mode")) str_field = &c->mode;
    else if (!strcmp(full, "nvidia-container-runtime.log-level")) str_field = &c->log_level;
    else if (!strcmp(full, "nvidia-container-runtime.debug")) str_field = &c->debug;
    else if (!strcmp(full, "nvidia-container-runtime.runtimes")) list = &c->runtimes;
    else if (!strcmp(full, "nvidia-container-runtime.modes.cdi.default-kind"))
        str_field = &c->default_kind;
    else if (!strcmp(full, "nvidia-container-runtime.modes.cdi.annotation-prefixes"))
        list = &c->annotation_prefixes;
    else if (!strcmp(full, "nvidia-container-runtime.modes.cdi.spec-dirs"))
        list = &c->spec_dirs;
    else if (!strcmp(full, "accept-nvidia-visible-devices-envvar-when-unprivileged"))
        bool_field = &c->accept_envvar_unprivileged;
    else if (!strcmp(full, "accept-nvidia-visible-devices-as-volume-mounts"))
        bool_field = &c->accept_volume_mounts;
    Buf m = {0};
    if (str_field && !str_value) {
        buf_fmt(&m, "%s: expected a string", full);
    } else if (str_field) {
        *str_field = str_value;
    } else if (bool_field && !is_bool) {
        buf_fmt(&m, "%s: expected true or false", full);
    } else if (bool_field) {
        *bool_field = !strcmp(value, "true");
    } else if (list) {
        Strs parsed = {0};
        if (toml_strings(value, &parsed)) buf_fmt(&m, "%s: expected a list of strings", full);
        else *list = parsed;
    }
    if (m.p) {
        config_error(c, at, m.p);
        return -1;
    }
    return 0;
}

static void config_load(Config *c, const char *path) {
    size_t n;
    char *text = read_file(path, &n);
    if (!text) return;
    c->path = xstrndup(path, strlen(path));
    char section[256] = "";
    Buf pending = {0}; /* a multi-line array: "key = [ ..." until its "]" */
    int pending_at = 0, lineno = 0;
    for (char *line = text; line && *line;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = 0;
        lineno++;
        strip_comment(line);
        char *s = trim(line);
        line = next;
        if (pending.p) {
            buf_str(&pending, " ");
            buf_str(&pending, s);
            if (!strchr(s, ']')) continue;
            s = pending.p;
        } else if (!*s) {
            continue;
        } else if (*s == '[') {
            char *end = strrchr(s, ']');
            if (!end) {
                config_error(c, lineno, "unterminated table header");
                return;
            }
            *end = 0;
            snprintf(section, sizeof section, "%s", trim(s + 1 + (s[1] == '[')));
            continue;
        }
        int at = pending.p ? pending_at : lineno;
        char *eq = strchr(s, '=');
        if (!eq) {
            config_error(c, at, "expected key = value");
            return;
        }
        if (!pending.p) {
            const char *v = eq + 1;
            while (*v == ' ' || *v == '\t') v++;
            if (*v == '[' && !strchr(v, ']')) {
                buf_str(&pending, s);
                pending_at = lineno;
                continue;
            }
        }
        *eq = 0;
        char *key = trim(s), *value = trim(eq + 1);
        if (*key == '"' || *key == '\'') {
            char *k = key;
            key = toml_string(&k);
            if (!key) {
                config_error(c, at, "bad quoted key");
                return;
            }
        }
        char full[600];
        snprintf(full, sizeof full, "%s%s%s", section, *section ? "." : "", key);
        if (config_set(c, at, full, value)) return;
        free(pending.p);
        pending = (Buf){0};
    }
    if (pending.p) config_error(c, pending_at, "unterminated array");
}

/* ---------------------------------------------------------------- logging */

static int level_rank(const char *l) {
    if (!strcmp(l, "debug") || !strcmp(l, "trace")) return 0;
    if (!strcmp(l, "info")) return 1;
    if (!strcmp(l, "warning") || !strcmp(l, "warn")) return 2;
    return 3;
}

static Config cfg;
static const char *runtime_log, *runtime_log_format;
static int debug_flag;

static void now_rfc3339(char *out, size_t n) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void append_line(const char *path, const char *line) {
    if (!path || !*path || !strcmp(path, "/dev/null")) return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    ssize_t w = write(fd, line, strlen(line));
    (void)w;
    close(fd);
}

static void logf_(const char *level, const char *fmt, ...) {
    const char *threshold = debug_flag ? "debug" : cfg.log_level;
    if (level_rank(level) < level_rank(threshold)) return;
    char msg[2048], stamp[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    now_rfc3339(stamp, sizeof stamp);
    Buf b = {0};
    buf_fmt(&b, "%s [%s] %s\n", stamp, level, msg);
    append_line(cfg.debug, b.p);
    if (level_rank(level) >= 3 && runtime_log) {
        /* the low-level runtime's log, where containerd looks for the reason a create failed */
        Buf r = {0};
        if (runtime_log_format && !strcmp(runtime_log_format, "json")) {
            buf_str(&r, "{\"level\":\"error\",\"msg\":");
            dump_string(&r, msg, strlen(msg));
            buf_fmt(&r, ",\"time\":\"%s\"}\n", stamp);
        } else {
            buf_fmt(&r, "time=\"%s\" level=error msg=\"%s\"\n", stamp, msg);
        }
        append_line(runtime_log, r.p);
    }
}

/* ---------------------------------------------------------------- the low-level runtime */

static char *self_exe;

static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return a && b && !stat(a, &sa) && !stat(b, &sb) && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static char *find_runtime(void) {
    for (size_t i = 0; i < cfg.runtimes.n; i++) {
        const char *name = cfg.runtimes.v[i];
        if (!*name) continue;
        if (strchr(name, '/')) {
            if (!access(name, X_OK) && !same_file(name, self_exe)) return xstrndup(name, strlen(name));
            continue;
        }
        const char *path = getenv("PATH");
        if (!path || !*path) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        const char *p = path;
        while (*p) {
            const char *colon = strchr(p, ':');
            size_t dn = colon ? (size_t)(colon - p) : strlen(p);
            Buf full = {0};
            buf_put(&full, dn ? p : ".", dn ? dn : 1);
            buf_str(&full, "/");
            buf_str(&full, name);
            struct stat st;
            if (!stat(full.p, &st) && S_ISREG(st.st_mode) && !access(full.p, X_OK) &&
                !same_file(full.p, self_exe))
                return full.p;
            free(full.p);
            p += dn + (colon ? 1 : 0);
        }
    }
    return NULL;
}

static void exec_runtime(int argc, char **argv) {
    (void)argc;
    char *runtime = find_runtime();
    if (!runtime) {
        Buf names = {0};
        for (size_t i = 0; i < cfg.runtimes.n; i++)
            buf_fmt(&names, "%s%s", i ? ", " : "", cfg.runtimes.v[i]);
        logf_("error", "no low-level runtime found: none of runtimes = [%s] is an executable",
              names.p ? names.p : "");
        fprintf(stderr, "nvidia-container-runtime: no low-level runtime found (runtimes = [%s])\n",
                names.p ? names.p : "");
        exit(1);
    }
    argv[0] = runtime;
    execv(runtime, argv);
    fprintf(stderr, "nvidia-container-runtime: exec %s: %s\n", runtime, strerror(errno));
    exit(1);
}

/* ---------------------------------------------------------------- argv */

static const char *VALUED_GLOBALS[] = {"--root", "--log", "--log-format", "--criu", "--rootless",
                                       "--cgroup-manager", NULL};

static int valued_global(const char *a) {
    for (int i = 0; VALUED_GLOBALS[i]; i++)
        if (!strcmp(a, VALUED_GLOBALS[i])) return 1;
    return 0;
}

/* The verb's index (0 if none); global --log/--log-format/--debug remembered. */
static int find_verb(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') return i;
        const char *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        char name[64];
        if (n >= sizeof name) continue;
        memcpy(name, a, n);
        name[n] = 0;
        const char *value = eq ? eq + 1 : (valued_global(name) && i + 1 < argc ? argv[i + 1] : NULL);
        if (!strcmp(name, "--log")) runtime_log = value;
        if (!strcmp(name, "--log-format")) runtime_log_format = value;
        if (!strcmp(name, "--debug")) debug_flag = 1;
        if (!eq && valued_global(name)) i++;
    }
    return 0;
}

static const char *find_bundle(int argc, char **argv, int verb) {
    for (int i = verb + 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--bundle") || !strcmp(a, "-b")) return i + 1 < argc ? argv[i + 1] : ".";
        if (!strncmp(a, "--bundle=", 9)) return a + 9;
        if (!strncmp(a, "-b=", 3)) return a + 3;
    }
    return ".";
}

/* ---------------------------------------------------------------- the request */

typedef struct {
    Strs devices; /* fully qualified "kind=name" */
    int none;     /* NVIDIA_VISIBLE_DEVICES=none: driver files, no GPU */
    const char *none_kind;
} Request;

static const char *env_value(const J *env, const char *name) {
    const char *found = NULL;
    size_t n = strlen(name);
    for (size_t i = 0; env && env->t == J_ARR && i < env->len; i++) {
        const char *e = j_cstr(env->items[i]);
        if (e && !strncmp(e, name, n) && e[n] == '=') found = e + n + 1;
    }
    return found;
}

static int is_privileged(const J *spec) {
    const J *bounding = j_get(j_get(j_get(spec, "process"), "capabilities"), "bounding");
    for (size_t i = 0; bounding && bounding->t == J_ARR && i < bounding->len; i++) {
        const char *c = j_cstr(bounding->items[i]);
        if (c && !strcmp(c, "CAP_SYS_ADMIN")) return 1;
    }
    return 0;
}

static void add_device(Request *r, const char *kind, const char *name) {
    Buf b = {0};
    if (strchr(name, '=')) buf_str(&b, name);
    else buf_fmt(&b, "%s=%s", kind, name);
    if (!strs_has(&r->devices, b.p)) strs_add(&r->devices, b.p);
    free(b.p);
}

static void add_list(Request *r, const char *kind, const char *list) {
    char *copy = xstrndup(list, strlen(list)), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        t = trim(t);
        if (*t) add_device(r, kind, t);
    }
    free(copy);
}

static void mounted_devices(const J *spec, Strs *out) {
    const J *mounts = j_get(spec, "mounts");
    size_t rn = strlen(DEVICES_ROOT);
    for (size_t i = 0; mounts && mounts->t == J_ARR && i < mounts->len; i++) {
        const char *src = j_cstr(j_get(mounts->items[i], "source"));
        const char *dst = j_cstr(j_get(mounts->items[i], "destination"));
        if (!src || !dst || strcmp(src, "/dev/null")) continue;
        if (strncmp(dst, DEVICES_ROOT, rn) || dst[rn] != '/' || !dst[rn + 1]) continue;
        const char *name = dst + rn + 1;
        Buf b = {0};
        if (!strncmp(name, "cdi/", 4)) { /* cdi/<vendor>/<class>/<name> */
            const char *last = strrchr(name + 4, '/');
            if (!last) continue;
            buf_put(&b, name + 4, (size_t)(last - name - 4));
            buf_fmt(&b, "=%s", last + 1);
        } else {
            buf_str(&b, name);
        }
        if (!strs_has(out, b.p)) strs_add(out, b.p);
        free(b.p);
    }
}

static const char *mode_of(const char *argv0) {
    const char *base = strrchr(argv0, '/');
    base = base ? base + 1 : argv0;
    const char *dot = strrchr(base, '.');
    if (dot && !strcmp(dot, ".cdi")) return "cdi";
    if (dot && !strcmp(dot, ".legacy")) return "legacy";
    return cfg.mode;
}

static void resolve(const J *spec, const char *mode, Request *r) {
    const char *kind = !strcmp(mode, "cdi") ? cfg.default_kind : "nvidia.com/gpu";
    const J *env = j_get(j_get(spec, "process"), "env");
    Strs from_mounts = {0};
    if (cfg.accept_volume_mounts) mounted_devices(spec, &from_mounts);
    if (from_mounts.n) {
        for (size_t i = 0; i < from_mounts.n; i++) add_device(r, kind, from_mounts.v[i]);
    } else {
        const char *visible = env_value(env, "NVIDIA_VISIBLE_DEVICES");
        if (!visible && env_value(env, "CUDA_VERSION") && !env_value(env, "NVIDIA_REQUIRE_CUDA"))
            visible = "all"; /* a legacy CUDA image: all GPUs, as upstream */
        if (visible && (cfg.accept_envvar_unprivileged || is_privileged(spec))) {
            Request probe = {0};
            add_list(&probe, kind, visible);
            int is_void = !probe.devices.n, is_none = 0;
            for (size_t i = 0; i < probe.devices.n; i++) {
                const char *name = strchr(probe.devices.v[i], '=') + 1;
                if (!strcmp(name, "void")) is_void = 1;
                if (!strcmp(name, "none")) is_none = 1;
            }
            if (!is_void && is_none) {
                r->none = 1;
                r->none_kind = kind;
            } else if (!is_void) {
                for (size_t i = 0; i < probe.devices.n; i++) strs_add(&r->devices, probe.devices.v[i]);
            }
        } else if (visible) {
            logf_("info", "ignoring NVIDIA_VISIBLE_DEVICES in an unprivileged container "
                          "(accept-nvidia-visible-devices-envvar-when-unprivileged = false)");
        }
    }
    const J *ann = j_get(spec, "annotations");
    for (size_t i = 0; ann && ann->t == J_OBJ && i < ann->len; i++) {
        for (size_t p = 0; p < cfg.annotation_prefixes.n; p++) {
            const char *prefix = cfg.annotation_prefixes.v[p];
            const char *v = j_cstr(ann->items[i]);
            if (v && !strncmp(ann->keys[i]->s, prefix, strlen(prefix))) {
                add_list(r, kind, v);
                break;
            }
        }
    }
}

/* ---------------------------------------------------------------- CDI specs */

typedef struct {
    char *file;
    char *kind;
    J *spec;
} Spec;

static Spec *specs;
static size_t nspecs;
static Strs spec_errors;

static int is_json_name(const char *n) {
    size_t l = strlen(n);
    return l > 5 && !strcmp(n + l - 5, ".json");
}

static int by_name(const struct dirent **a, const struct dirent **b) {
    return strcmp((*a)->d_name, (*b)->d_name);
}

static void load_specs(void) {
    for (size_t d = 0; d < cfg.spec_dirs.n; d++) {
        struct dirent **names;
        int n = scandir(cfg.spec_dirs.v[d], &names, NULL, by_name);
        if (n < 0) continue;
        for (int i = 0; i < n; i++) {
            if (!is_json_name(names[i]->d_name)) continue;
            Buf path = {0};
            buf_fmt(&path, "%s/%s", cfg.spec_dirs.v[d], names[i]->d_name);
            size_t len;
            char *text = read_file(path.p, &len);
            const char *err = NULL;
            J *spec = text ? json_parse(text, len, &err) : NULL;
            const char *kind = j_cstr(j_get(spec, "kind"));
            if (!spec || !kind) {
                Buf e = {0};
                buf_fmt(&e, "%s: %s", path.p, !text ? strerror(errno) : spec ? "no kind" : err);
                strs_add(&spec_errors, e.p);
                logf_("warning", "skipping CDI spec %s", e.p);
                continue;
            }
            specs = xrealloc(specs, (nspecs + 1) * sizeof *specs);
            specs[nspecs++] = (Spec){path.p, xstrndup(kind, strlen(kind)), spec};
        }
    }
}

/* The spec (latest directory first, as CDI gives later directories priority) holding
 * kind=name, and the device's object; NULL if none. */
static J *find_device(const char *kind, const char *name, Spec **owner) {
    for (size_t i = nspecs; i-- > 0;) {
        if (strcmp(specs[i].kind, kind)) continue;
        J *devices = j_get(specs[i].spec, "devices");
        for (size_t k = 0; devices && devices->t == J_ARR && k < devices->len; k++) {
            const char *n = j_cstr(j_get(devices->items[k], "name"));
            if (n && !strcmp(n, name)) {
                *owner = &specs[i];
                return devices->items[k];
            }
        }
    }
    return NULL;
}

static Spec *find_kind(const char *kind) {
    for (size_t i = nspecs; i-- > 0;)
        if (!strcmp(specs[i].kind, kind)) return &specs[i];
    return NULL;
}

/* ---------------------------------------------------------------- applying edits */

static char failure[4096];

static int fail(const char *device, const char *fmt, ...) {
    char what[3000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(failure, sizeof failure, "%s: %s", device, what);
    return -1;
}

static void set_env(J *spec, const char *kv) {
    J *process = j_child(spec, "process", J_OBJ);
    if (!process) return;
    J *env = j_child(process, "env", J_ARR);
    if (!env) return;
    const char *eq = strchr(kv, '=');
    size_t n = eq ? (size_t)(eq - kv) : strlen(kv);
    for (size_t i = 0; i < env->len; i++) {
        const char *e = j_cstr(env->items[i]);
        if (e && !strncmp(e, kv, n) && (e[n] == '=' || e[n] == 0)) {
            env->items[i] = j_str(kv);
            return;
        }
    }
    j_push(env, NULL, j_str(kv));
}

static long long num_of(const J *j, long long fallback) {
    if (!j || j->t != J_NUM) return fallback;
    return strtoll(j->s, NULL, 10);
}

static int add_device_node(J *spec, const J *node, const char *device) {
    const char *path = j_cstr(j_get(node, "path"));
    if (!path) return fail(device, "a deviceNode without a path");
    const char *host = j_cstr(j_get(node, "hostPath"));
    if (!host) host = path;
    struct stat st;
    if (stat(host, &st)) return fail(device, "device node %s: %s", host, strerror(errno));
    const char *type = j_cstr(j_get(node, "type"));
    if (!type) {
        if (S_ISCHR(st.st_mode)) type = "c";
        else if (S_ISBLK(st.st_mode)) type = "b";
        else return fail(device, "device node %s is not a character or block device", host);
    }
    long long major = num_of(j_get(node, "major"), (long long)major(st.st_rdev));
    long long minor = num_of(j_get(node, "minor"), (long long)minor(st.st_rdev));
    long long mode = num_of(j_get(node, "fileMode"), (long long)(st.st_mode & 0777));
    const char *perms = j_cstr(j_get(node, "permissions"));

    J *linux_ = j_child(spec, "linux", J_OBJ);
    J *devices = linux_ ? j_child(linux_, "devices", J_ARR) : NULL;
    J *resources = linux_ ? j_child(linux_, "resources", J_OBJ) : NULL;
    J *allow = resources ? j_child(resources, "devices", J_ARR) : NULL;
    if (!devices || !allow) return fail(device, "config.json: linux.devices is not a list");
    J *dev = j_new(J_OBJ);
    j_set(dev, "path", j_str(path));
    j_set(dev, "type", j_str(type));
    j_set(dev, "major", j_int(major));
    j_set(dev, "minor", j_int(minor));
    j_set(dev, "fileMode", j_int(mode));
    if (j_get(node, "uid")) j_set(dev, "uid", j_int(num_of(j_get(node, "uid"), 0)));
    if (j_get(node, "gid")) j_set(dev, "gid", j_int(num_of(j_get(node, "gid"), 0)));
    int replaced = 0;
    for (size_t i = 0; i < devices->len; i++) {
        const char *p = j_cstr(j_get(devices->items[i], "path"));
        if (p && !strcmp(p, path)) {
            devices->items[i] = dev;
            replaced = 1;
        }
    }
    if (!replaced) j_push(devices, NULL, dev);
    J *rule = j_new(J_OBJ);
    j_set(rule, "allow", j_new(J_TRUE));
    j_set(rule, "type", j_str(type));
    j_set(rule, "major", j_int(major));
    j_set(rule, "minor", j_int(minor));
    j_set(rule, "access", j_str(perms ? perms : "rwm"));
    j_push(allow, NULL, rule);
    return 0;
}

static int add_mount(J *spec, const J *m, const char *device) {
    const char *host = j_cstr(j_get(m, "hostPath"));
    const char *ctr = j_cstr(j_get(m, "containerPath"));
    if (!host || !ctr) return fail(device, "a mount without hostPath or containerPath");
    const char *type = j_cstr(j_get(m, "type"));
    struct stat st;
    if ((!type || !strcmp(type, "bind")) && stat(host, &st))
        return fail(device, "mount source %s: %s", host, strerror(errno));
    J *mounts = j_child(spec, "mounts", J_ARR);
    if (!mounts) return fail(device, "config.json: mounts is not a list");
    J *out = j_new(J_OBJ);
    j_set(out, "destination", j_str(ctr));
    j_set(out, "type", j_str(type ? type : "bind"));
    j_set(out, "source", j_str(host));
    J *opts = j_get(m, "options");
    if (opts && opts->t == J_ARR) j_set(out, "options", opts);
    for (size_t i = 0; i < mounts->len; i++) {
        const char *d = j_cstr(j_get(mounts->items[i], "destination"));
        if (d && !strcmp(d, ctr)) {
            mounts->items[i] = out;
            return 0;
        }
    }
    j_push(mounts, NULL, out);
    return 0;
}

static const char *HOOK_NAMES[] = {"prestart", "createRuntime", "createContainer",
                                   "startContainer", "poststart", "poststop", NULL};

static int add_hook(J *spec, const J *h, const char *device) {
    const char *name = j_cstr(j_get(h, "hookName"));
    const char *path = j_cstr(j_get(h, "path"));
    int known = 0;
    for (int i = 0; name && HOOK_NAMES[i]; i++) known |= !strcmp(name, HOOK_NAMES[i]);
    if (!known || !path) return fail(device, "a hook without a known hookName and a path");
    if (access(path, X_OK)) return fail(device, "hook %s: %s", path, strerror(errno));
    J *hooks = j_child(spec, "hooks", J_OBJ);
    J *list = hooks ? j_child(hooks, name, J_ARR) : NULL;
    if (!list) return fail(device, "config.json: hooks is not an object");
    J *out = j_new(J_OBJ);
    j_set(out, "path", j_str(path));
    static const char *copied[] = {"args", "env", "timeout", NULL};
    for (int i = 0; copied[i]; i++)
        if (j_get(h, copied[i])) j_set(out, copied[i], j_get(h, copied[i]));
    j_push(list, NULL, out);
    return 0;
}

static int apply_edits(J *spec, const J *edits, const char *device) {
    if (!edits) return 0;
    if (edits->t != J_OBJ) return fail(device, "containerEdits is not an object");
    const J *env = j_get(edits, "env");
    for (size_t i = 0; env && env->t == J_ARR && i < env->len; i++)
        if (j_cstr(env->items[i])) set_env(spec, j_cstr(env->items[i]));
    const J *nodes = j_get(edits, "deviceNodes");
    for (size_t i = 0; nodes && nodes->t == J_ARR && i < nodes->len; i++)
        if (add_device_node(spec, nodes->items[i], device)) return -1;
    const J *mounts = j_get(edits, "mounts");
    for (size_t i = 0; mounts && mounts->t == J_ARR && i < mounts->len; i++)
        if (add_mount(spec, mounts->items[i], device)) return -1;
    const J *hooks = j_get(edits, "hooks");
    for (size_t i = 0; hooks && hooks->t == J_ARR && i < hooks->len; i++)
        if (add_hook(spec, hooks->items[i], device)) return -1;
    const J *gids = j_get(edits, "additionalGids");
    if (gids && gids->t == J_ARR && gids->len) {
        J *process = j_child(spec, "process", J_OBJ);
        J *user = process ? j_child(process, "user", J_OBJ) : NULL;
        J *extra = user ? j_child(user, "additionalGids", J_ARR) : NULL;
        for (size_t i = 0; extra && i < gids->len; i++) j_push(extra, NULL, gids->items[i]);
    }
    return 0;
}

static size_t depth_of(const char *path) {
    size_t n = 0;
    for (const char *p = path; *p; p++)
        if (*p == '/' && p[1] && p[1] != '/') n++;
    return n;
}

/* Mounts in order of path depth (stable), as the CDI library leaves them: a parent is mounted
 * before what is mounted below it. */
static void sort_mounts(J *spec) {
    J *mounts = j_get(spec, "mounts");
    if (!mounts || mounts->t != J_ARR) return;
    for (size_t i = 1; i < mounts->len; i++) {
        J *m = mounts->items[i];
        const char *d = j_cstr(j_get(m, "destination"));
        size_t dm = d ? depth_of(d) : 0, k = i;
        while (k > 0) {
            const char *p = j_cstr(j_get(mounts->items[k - 1], "destination"));
            if ((p ? depth_of(p) : 0) <= dm) break;
            mounts->items[k] = mounts->items[k - 1];
            k--;
        }
        mounts->items[k] = m;
    }
}

static int inject(J *spec, const Request *r) {
    load_specs();
    Strs applied = {0}; /* spec files whose common edits are in */
    if (r->none) {
        Spec *s = find_kind(r->none_kind);
        if (!s) return fail(r->none_kind, "no CDI spec of this kind in the spec-dirs");
        if (apply_edits(spec, j_get(s->spec, "containerEdits"), r->none_kind)) return -1;
    }
    for (size_t i = 0; i < r->devices.n; i++) {
        const char *qualified = r->devices.v[i];
        const char *eq = strchr(qualified, '=');
        char *kind = xstrndup(qualified, (size_t)(eq - qualified));
        Spec *owner = NULL;
        J *dev = find_device(kind, eq + 1, &owner);
        if (!dev) {
            if (spec_errors.n)
                return fail(qualified, "no such CDI device (unreadable spec: %s)", spec_errors.v[0]);
            Buf dirs = {0};
            for (size_t d = 0; d < cfg.spec_dirs.n; d++)
                buf_fmt(&dirs, "%s%s", d ? ", " : "", cfg.spec_dirs.v[d]);
            return fail(qualified, "no such CDI device (no JSON spec in %s names it)",
                        dirs.p ? dirs.p : "no spec-dirs");
        }
        if (!strs_has(&applied, owner->file)) {
            strs_add(&applied, owner->file);
            if (apply_edits(spec, j_get(owner->spec, "containerEdits"), qualified)) return -1;
        }
        if (apply_edits(spec, j_get(dev, "containerEdits"), qualified)) return -1;
        logf_("info", "injected %s from %s", qualified, owner->file);
    }
    sort_mounts(spec);
    return 0;
}

static int write_atomically(const char *path, const char *data, size_t n) {
    Buf tmp = {0};
    buf_fmt(&tmp, "%s.nvidia-tmp.%ld", path, (long)getpid());
    struct stat st;
    mode_t mode = stat(path, &st) ? 0644 : (st.st_mode & 07777);
    int fd = open(tmp.p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return -1;
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            close(fd);
            unlink(tmp.p);
            return -1;
        }
        off += (size_t)w;
    }
    if (fsync(fd) || close(fd) || rename(tmp.p, path)) {
        unlink(tmp.p);
        return -1;
    }
    return 0;
}

/* Does the file mention anything that can ask for a GPU? If not, it is not even parsed. */
static int may_request_gpu(const char *text, size_t n) {
    static const char *markers[] = {"NVIDIA_VISIBLE_DEVICES", DEVICES_ROOT, "CUDA_VERSION", NULL};
    for (int i = 0; markers[i]; i++)
        if (memmem(text, n, markers[i], strlen(markers[i]))) return 1;
    for (size_t i = 0; i < cfg.annotation_prefixes.n; i++)
        if (memmem(text, n, cfg.annotation_prefixes.v[i], strlen(cfg.annotation_prefixes.v[i])))
            return 1;
    return 0;
}

static void gpu_failure(void) {
    logf_("error", "%s", failure);
    fprintf(stderr, "nvidia-container-runtime: %s\n", failure);
    exit(1);
}

static const char *config_path(void) {
    const char *env = getenv("NVIDIA_CTK_CONFIG_FILE_PATH");
    if (env && *env) return env;
    static char beside[PATH_MAX + 64];
    if (self_exe) {
        const char *slash = strrchr(self_exe, '/');
        if (slash) {
            snprintf(beside, sizeof beside, "%.*s/.config/nvidia-container-runtime/config.toml",
                     (int)(slash - self_exe), self_exe);
            if (!access(beside, R_OK)) return beside;
        }
    }
    const char *xdg = getenv("XDG_CONFIG_HOME");
    static char xdg_path[PATH_MAX];
    if (xdg && *xdg) {
        snprintf(xdg_path, sizeof xdg_path, "%s/nvidia-container-runtime/config.toml", xdg);
        return xdg_path;
    }
    return "/etc/nvidia-container-runtime/config.toml";
}

#define IDENTITY "gpu-operator nvidia-container-runtime"

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--gpu-operator-shim")) {
        puts(IDENTITY); /* how the toolkit tells this binary from NVIDIA's */
        return 0;
    }
    self_exe = realpath("/proc/self/exe", NULL);
    config_defaults(&cfg);
    int verb = find_verb(argc, argv);
    config_load(&cfg, config_path());
    const char *rt_env = getenv("NVIDIA_CONTAINER_RUNTIME_RUNTIMES");
    if (rt_env && *rt_env) {
        Strs list = {0};
        char *copy = xstrndup(rt_env, strlen(rt_env)), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
            if (*trim(t)) strs_add(&list, trim(t));
        cfg.runtimes = list;
    }
    /* `run` is create + start in one (what people type; containerd and Docker use create) */
    if (!verb || (strcmp(argv[verb], "create") && strcmp(argv[verb], "run")))
        exec_runtime(argc, argv);

    const char *bundle = find_bundle(argc, argv, verb);
    Buf path = {0};
    buf_fmt(&path, "%s/config.json", bundle);
    size_t n;
    char *text = read_file(path.p, &n);
    if (!text || !may_request_gpu(text, n)) exec_runtime(argc, argv);

    const char *err = NULL;
    J *spec = json_parse(text, n, &err);
    if (!spec || spec->t != J_OBJ) {
        logf_("warning", "%s: %s; passed through unchanged", path.p, err ? err : "not an object");
        exec_runtime(argc, argv);
    }
    const char *mode = mode_of(argv[0]);
    Request request = {0};
    resolve(spec, mode, &request);
    if (!request.devices.n && !request.none) exec_runtime(argc, argv);

    const char *what = request.devices.n ? request.devices.v[0] : request.none_kind;
    if (cfg.error) {
        snprintf(failure, sizeof failure, "%s: %s", what, cfg.error);
        gpu_failure();
    }
    if (strcmp(mode, "auto") && strcmp(mode, "cdi") && strcmp(mode, "legacy") &&
        strcmp(mode, "jit-cdi")) {
        snprintf(failure, sizeof failure, "%s: mode = \"%s\" is not supported (auto, cdi, legacy, jit-cdi)",
                 what, mode);
        gpu_failure();
    }
    if (inject(spec, &request)) gpu_failure();
    Buf out = {0};
    json_dump(&out, spec);
    if (write_atomically(path.p, out.p, out.n)) {
        snprintf(failure, sizeof failure, "%s: writing %s: %s", what, path.p, strerror(errno));
        gpu_failure();
    }
    exec_runtime(argc, argv);
    return 1;
}
