/*
 * cipherml_gmp: optional Node-API (version 8) accelerator for modular exponentiation with libgmp.
 *
 * Number encoding at the JS boundary: every integer is an unsigned big-endian magnitude in a
 * Buffer/Uint8Array (an empty array is 0). Results are minimal-length Buffers: 0 is returned as an
 * EMPTY Buffer (length 0), never as a single 0x00 byte.
 *
 * Exports:
 *   powm(base, exp, mod)           mpz_powm; variable time. Paillier decryption exponents (p-1, q-1,
 *                                  lambda) are secret and still go through this by default.
 *   powmSec(base, exp, mod)        mpz_powm_sec: the constant-time (side-channel silent) variant,
 *                                  ~10-15% slower at 2048 bits; requires an odd modulus.
 *   fixedBaseCreate(base, mod, maxExpBits, windowBits) -> External table
 *                                  T[i][d] = base^(d * 2^(w*i)) mod mod, i < ceil(maxExpBits/w),
 *                                  1 <= d < 2^w; freed by a finalizer (and accounted to V8 as
 *                                  external memory so the GC sees its size).
 *   fixedBasePow(table, exp)       prod_i T[i][digit_i(exp)] mod mod: one multiplication and one
 *                                  reduction per non-zero w-bit digit, no squarings.
 *   fixedBasePowMany(table, exps)  the same over an array.
 *   version()                      the libgmp version string (gmp_version).
 *
 * Invariants:
 *   - No mutable global state: the module is initialised per environment (NAPI_MODULE_INIT), so it
 *     may be loaded in the main thread and any number of worker_threads at once. libgmp with its
 *     default allocator is reentrant. The only statics are read-only constants.
 *   - Every modulus is > 1, so division by zero is impossible and 1 mod m == 1.
 *   - Table entries are fully reduced (< mod), stored as fixed-stride limb arrays with their
 *     normalised limb counts; they are only ever read through mpz_roinit_n views.
 */
#include <node_api.h>
#include <gmp.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upper bound on a table's size, so that a mistaken windowBits cannot exhaust memory. */
#define FB_MAX_TABLE_BYTES ((uint64_t)1 << 30)
#define FB_MAX_WINDOW_BITS 16
#define FB_MAX_EXP_BITS 65536

/* Marks externals created by fixedBaseCreate; checked before any table pointer is trusted. */
static const napi_type_tag FB_TYPE_TAG = {0x6369706865726d6cULL, 0x676d702d66627431ULL};

typedef struct {
  uint32_t max_exp_bits;
  uint32_t window_bits;
  uint32_t windows;      /* ceil(max_exp_bits / window_bits) */
  uint32_t digits;       /* 2^window_bits - 1 entries per window (digit 0 is implicit 1) */
  mp_size_t stride;      /* limbs per entry = limb count of mod */
  mpz_t mod;
  mp_limb_t *limbs;      /* windows * digits * stride limbs; entry (i, d) at ((i*digits)+(d-1))*stride */
  mp_size_t *sizes;      /* normalised limb count of each entry (0 for the value 0) */
  int64_t accounted;     /* bytes reported through napi_adjust_external_memory */
} fb_table;

/* ---------------------------------------------------------------------------------------------- */
/* Error helpers. Each returns NULL so callers can `return throw_...(...)`.                        */

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

static napi_value throw_range(napi_env env, const char *msg) {
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  return NULL;
}

/* Throws a generic Error for a failed napi call unless an exception is already pending. */
static napi_value throw_napi(napi_env env, const char *where) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    const napi_extended_error_info *info = NULL;
    char msg[256];
    napi_get_last_error_info(env, &info);
    snprintf(msg, sizeof msg, "%s: Node-API call failed (%s)", where,
             info != NULL && info->error_message != NULL ? info->error_message : "unknown");
    napi_throw_error(env, NULL, msg);
  }
  return NULL;
}

#define NAPI_OR_THROW(env, where, call) \
  do {                                  \
    if ((call) != napi_ok) {            \
      throw_napi((env), (where));       \
      goto fail;                        \
    }                                   \
  } while (0)

/* ---------------------------------------------------------------------------------------------- */
/* Conversions.                                                                                    */

/* Reads a Uint8Array (Buffer) argument. Returns false after throwing a TypeError naming `what`. */
static bool get_bytes(napi_env env, napi_value v, const char *what, const uint8_t **data, size_t *len) {
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s must be a Buffer or Uint8Array (big-endian magnitude)", what);
    throw_type(env, msg);
    return false;
  }
  napi_typedarray_type type;
  size_t length = 0;
  void *ptr = NULL;
  if (napi_get_typedarray_info(env, v, &type, &length, &ptr, NULL, NULL) != napi_ok) {
    throw_napi(env, what);
    return false;
  }
  if (type != napi_uint8_array && type != napi_uint8_clamped_array) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s must be a Buffer or Uint8Array, not another typed array", what);
    throw_type(env, msg);
    return false;
  }
  *data = (const uint8_t *)ptr;
  *len = length;
  return true;
}

static void import_be(mpz_t z, const uint8_t *p, size_t n) {
  if (n == 0) {
    mpz_set_ui(z, 0);
  } else {
    mpz_import(z, n, 1, 1, 1, 0, p);
  }
}

/* Minimal big-endian Buffer of z >= 0; zero gives an empty Buffer. */
static bool export_be(napi_env env, mpz_srcptr z, napi_value *out) {
  size_t n = mpz_sgn(z) == 0 ? 0 : (mpz_sizeinbase(z, 2) + 7) / 8;
  void *data = NULL;
  if (napi_create_buffer(env, n, &data, out) != napi_ok) {
    throw_napi(env, "result");
    return false;
  }
  if (n > 0) {
    size_t written = 0;
    mpz_export(data, &written, 1, 1, 1, 0, z);
  }
  return true;
}

/* Bit length of a big-endian magnitude (0 for zero). */
static uint64_t bit_length_be(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n && p[i] == 0) i++;
  if (i == n) return 0;
  unsigned top = p[i];
  unsigned bits = 0;
  while (top != 0) {
    bits++;
    top >>= 1;
  }
  return (uint64_t)(n - i - 1) * 8 + bits;
}

/* The w-bit digit of the big-endian magnitude p[0..n) starting at bit `pos` (bit 0 = LSB), w <= 16. */
static uint32_t digit_at(const uint8_t *p, size_t n, uint64_t pos, unsigned w) {
  uint64_t byte = pos >> 3;
  unsigned shift = (unsigned)(pos & 7);
  uint32_t v = 0;
  for (unsigned k = 0; k < 3; k++) {
    uint64_t bi = byte + k;
    if (bi < n) v |= (uint32_t)p[n - 1 - bi] << (8 * k);
  }
  return (v >> shift) & ((1u << w) - 1u);
}

/* Reads a JS number that must be an integer in [lo, hi]. */
static bool get_int_in(napi_env env, napi_value v, const char *what, double lo, double hi, uint32_t *out) {
  napi_valuetype t;
  char msg[160];
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    snprintf(msg, sizeof msg, "%s must be a number", what);
    throw_type(env, msg);
    return false;
  }
  double d = 0;
  napi_get_value_double(env, v, &d);
  if (!(d >= lo && d <= hi) || floor(d) != d) {
    snprintf(msg, sizeof msg, "%s must be an integer in %.0f..%.0f", what, lo, hi);
    throw_range(env, msg);
    return false;
  }
  *out = (uint32_t)d;
  return true;
}

/* ---------------------------------------------------------------------------------------------- */
/* powm / powmSec                                                                                  */

static napi_value powm_impl(napi_env env, napi_callback_info info, bool sec) {
  const char *fn = sec ? "powmSec" : "powm";
  size_t argc = 3;
  napi_value argv[3];
  napi_value result = NULL;
  const uint8_t *bp, *ep, *mp;
  size_t bn, en, mn;
  char msg[96];

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return throw_napi(env, fn);
  if (argc < 3) {
    snprintf(msg, sizeof msg, "%s(base, exp, mod) needs 3 arguments", fn);
    return throw_type(env, msg);
  }
  snprintf(msg, sizeof msg, "%s: base", fn);
  if (!get_bytes(env, argv[0], msg, &bp, &bn)) return NULL;
  snprintf(msg, sizeof msg, "%s: exp", fn);
  if (!get_bytes(env, argv[1], msg, &ep, &en)) return NULL;
  snprintf(msg, sizeof msg, "%s: mod", fn);
  if (!get_bytes(env, argv[2], msg, &mp, &mn)) return NULL;

  mpz_t b, e, m, r;
  mpz_inits(b, e, m, r, NULL);
  import_be(m, mp, mn);
  if (mpz_cmp_ui(m, 1) <= 0) {
    snprintf(msg, sizeof msg, "%s: mod must be > 1", fn);
    throw_range(env, msg);
    goto done;
  }
  if (sec && mpz_even_p(m)) {
    throw_range(env, "powmSec: mod must be odd (mpz_powm_sec); use powm for even moduli");
    goto done;
  }
  import_be(b, bp, bn);
  import_be(e, ep, en);
  if (mpz_sgn(e) == 0) {
    mpz_set_ui(r, 1); /* mod > 1 */
  } else if (sec) {
    mpz_powm_sec(r, b, e, m);
  } else {
    mpz_powm(r, b, e, m);
  }
  if (!export_be(env, r, &result)) result = NULL;

done:
  mpz_clears(b, e, m, r, NULL);
  return result;
}

/* gcd(a, b) of two non-negative magnitudes (membership test c ∈ Z*_{n²} ⇔ gcd(c, n) = 1). */
static napi_value js_gcd(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_value result = NULL;
  const uint8_t *ap, *bp;
  size_t an, bn;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return throw_napi(env, "gcd");
  if (argc < 2) return throw_type(env, "gcd(a, b) needs 2 arguments");
  if (!get_bytes(env, argv[0], "gcd: a", &ap, &an)) return NULL;
  if (!get_bytes(env, argv[1], "gcd: b", &bp, &bn)) return NULL;
  mpz_t a, b, r;
  mpz_inits(a, b, r, NULL);
  import_be(a, ap, an);
  import_be(b, bp, bn);
  mpz_gcd(r, a, b);
  if (!export_be(env, r, &result)) result = NULL;
  mpz_clears(a, b, r, NULL);
  return result;
}

static napi_value js_powm(napi_env env, napi_callback_info info) { return powm_impl(env, info, false); }
static napi_value js_powm_sec(napi_env env, napi_callback_info info) { return powm_impl(env, info, true); }

/* ---------------------------------------------------------------------------------------------- */
/* Fixed-base tables                                                                               */

static void fb_free(fb_table *t) {
  if (t == NULL) return;
  free(t->limbs);
  free(t->sizes);
  mpz_clear(t->mod);
  free(t);
}

static void fb_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  fb_table *t = (fb_table *)data;
  if (t == NULL) return;
  if (t->accounted != 0) {
    int64_t ignored;
    napi_adjust_external_memory(env, -t->accounted, &ignored);
  }
  fb_free(t);
}

static void fb_store(fb_table *t, uint64_t index, mpz_srcptr z) {
  mp_size_t n = (mp_size_t)mpz_size(z);
  t->sizes[index] = n;
  if (n > 0) memcpy(t->limbs + index * (uint64_t)t->stride, mpz_limbs_read(z), (size_t)n * sizeof(mp_limb_t));
}

static mpz_srcptr fb_entry(const fb_table *t, mpz_ptr view, uint32_t window, uint32_t digit) {
  uint64_t index = (uint64_t)window * t->digits + (digit - 1);
  return mpz_roinit_n(view, t->limbs + index * (uint64_t)t->stride, t->sizes[index]);
}

static napi_value js_fixed_base_create(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  const uint8_t *bp, *mp;
  size_t bn, mn;
  uint32_t max_exp_bits, window_bits;
  char msg[256];

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return throw_napi(env, "fixedBaseCreate");
  if (argc < 4) return throw_type(env, "fixedBaseCreate(base, mod, maxExpBits, windowBits) needs 4 arguments");
  if (!get_bytes(env, argv[0], "fixedBaseCreate: base", &bp, &bn)) return NULL;
  if (!get_bytes(env, argv[1], "fixedBaseCreate: mod", &mp, &mn)) return NULL;
  if (!get_int_in(env, argv[2], "fixedBaseCreate: maxExpBits", 1, FB_MAX_EXP_BITS, &max_exp_bits)) return NULL;
  if (!get_int_in(env, argv[3], "fixedBaseCreate: windowBits", 1, FB_MAX_WINDOW_BITS, &window_bits)) return NULL;

  fb_table *t = (fb_table *)calloc(1, sizeof *t);
  if (t == NULL) return throw_range(env, "fixedBaseCreate: out of memory");
  mpz_init(t->mod);
  import_be(t->mod, mp, mn);
  if (mpz_cmp_ui(t->mod, 1) <= 0) {
    fb_free(t);
    return throw_range(env, "fixedBaseCreate: mod must be > 1");
  }
  t->max_exp_bits = max_exp_bits;
  t->window_bits = window_bits;
  t->windows = (max_exp_bits + window_bits - 1) / window_bits;
  t->digits = (1u << window_bits) - 1u;
  t->stride = (mp_size_t)mpz_size(t->mod);

  uint64_t entries = (uint64_t)t->windows * t->digits;
  uint64_t bytes = entries * ((uint64_t)t->stride * sizeof(mp_limb_t) + sizeof(mp_size_t));
  if (bytes > FB_MAX_TABLE_BYTES) {
    snprintf(msg, sizeof msg,
             "fixedBaseCreate: table would take %llu bytes (%u windows x %u digits x %llu-byte entries), over the "
             "%llu-byte limit; lower windowBits or maxExpBits",
             (unsigned long long)bytes, t->windows, t->digits,
             (unsigned long long)((uint64_t)t->stride * sizeof(mp_limb_t)), (unsigned long long)FB_MAX_TABLE_BYTES);
    fb_free(t);
    return throw_range(env, msg);
  }
  t->limbs = (mp_limb_t *)malloc((size_t)(entries * (uint64_t)t->stride) * sizeof(mp_limb_t));
  t->sizes = (mp_size_t *)malloc((size_t)entries * sizeof(mp_size_t));
  if (t->limbs == NULL || t->sizes == NULL) {
    fb_free(t);
    return throw_range(env, "fixedBaseCreate: out of memory for the table; lower windowBits or maxExpBits");
  }

  /* Row i holds b_i^d for d = 1..digits with b_i = base^(2^(w*i)); b_{i+1} = b_i^(digits+1). */
  mpz_t b, cur, tmp;
  mpz_inits(b, cur, tmp, NULL);
  import_be(b, bp, bn);
  mpz_tdiv_r(b, b, t->mod);
  for (uint32_t i = 0; i < t->windows; i++) {
    uint64_t row = (uint64_t)i * t->digits;
    mpz_set(cur, b);
    fb_store(t, row, cur);
    for (uint32_t d = 2; d <= t->digits; d++) {
      mpz_mul(tmp, cur, b);
      mpz_tdiv_r(cur, tmp, t->mod);
      fb_store(t, row + d - 1, cur);
    }
    if (i + 1 < t->windows) {
      mpz_mul(tmp, cur, b);
      mpz_tdiv_r(b, tmp, t->mod);
    }
  }
  mpz_clears(b, cur, tmp, NULL);

  napi_value external;
  if (napi_create_external(env, t, fb_finalize, NULL, &external) != napi_ok) {
    fb_free(t);
    return throw_napi(env, "fixedBaseCreate");
  }
  /* From here on the finalizer owns t. */
  if (napi_type_tag_object(env, external, &FB_TYPE_TAG) != napi_ok) return throw_napi(env, "fixedBaseCreate");
  int64_t ignored;
  if (napi_adjust_external_memory(env, (int64_t)bytes, &ignored) == napi_ok) t->accounted = (int64_t)bytes;
  return external;
}

static fb_table *get_table(napi_env env, napi_value v, const char *what) {
  napi_valuetype type;
  bool tagged = false;
  void *data = NULL;
  char msg[160];
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_external ||
      napi_check_object_type_tag(env, v, &FB_TYPE_TAG, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, v, &data) != napi_ok || data == NULL) {
    snprintf(msg, sizeof msg, "%s must be a table returned by fixedBaseCreate", what);
    throw_type(env, msg);
    return NULL;
  }
  return (fb_table *)data;
}

/* acc = base^exp mod mod from the table; tmp and view are scratch. Returns false if exp is too long. */
static bool fb_pow(const fb_table *t, const uint8_t *ep, size_t en, mpz_ptr acc, mpz_ptr tmp, mpz_ptr view,
                   uint64_t *bits_out) {
  uint64_t bits = bit_length_be(ep, en);
  *bits_out = bits;
  if (bits > t->max_exp_bits) return false;
  unsigned w = t->window_bits;
  uint32_t used = (uint32_t)((bits + w - 1) / w);
  bool first = true;
  for (uint32_t i = 0; i < used; i++) {
    uint32_t d = digit_at(ep, en, (uint64_t)i * w, w);
    if (d == 0) continue;
    mpz_srcptr e = fb_entry(t, view, i, d);
    if (first) {
      mpz_set(acc, e);
      first = false;
    } else {
      mpz_mul(tmp, acc, e);
      mpz_tdiv_r(acc, tmp, t->mod);
    }
  }
  if (first) mpz_set_ui(acc, 1); /* exp == 0; mod > 1 */
  return true;
}

static napi_value throw_too_long(napi_env env, const char *what, uint64_t bits, const fb_table *t) {
  char msg[192];
  snprintf(msg, sizeof msg, "%s has %llu bits, more than the table's maxExpBits (%u)", what,
           (unsigned long long)bits, t->max_exp_bits);
  return throw_range(env, msg);
}

static napi_value js_fixed_base_pow(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_value result = NULL;
  const uint8_t *ep;
  size_t en;
  uint64_t bits;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return throw_napi(env, "fixedBasePow");
  if (argc < 2) return throw_type(env, "fixedBasePow(table, exp) needs 2 arguments");
  fb_table *t = get_table(env, argv[0], "fixedBasePow: table");
  if (t == NULL) return NULL;
  if (!get_bytes(env, argv[1], "fixedBasePow: exp", &ep, &en)) return NULL;

  mpz_t acc, tmp, view;
  mpz_init2(acc, (mp_bitcnt_t)t->stride * GMP_NUMB_BITS);
  mpz_init2(tmp, (mp_bitcnt_t)t->stride * 2 * GMP_NUMB_BITS);
  if (!fb_pow(t, ep, en, acc, tmp, view, &bits)) {
    throw_too_long(env, "fixedBasePow: exp", bits, t);
  } else if (!export_be(env, acc, &result)) {
    result = NULL;
  }
  mpz_clears(acc, tmp, NULL); /* view is a read-only alias: never cleared */
  return result;
}

static napi_value js_fixed_base_pow_many(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_value out = NULL;
  napi_value result = NULL;
  bool is_array = false;
  uint32_t count = 0;
  char what[64];

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return throw_napi(env, "fixedBasePowMany");
  if (argc < 2) return throw_type(env, "fixedBasePowMany(table, exps) needs 2 arguments");
  fb_table *t = get_table(env, argv[0], "fixedBasePowMany: table");
  if (t == NULL) return NULL;
  if (napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array) {
    return throw_type(env, "fixedBasePowMany: exps must be an array of Buffers");
  }
  if (napi_get_array_length(env, argv[1], &count) != napi_ok) return throw_napi(env, "fixedBasePowMany");
  if (napi_create_array_with_length(env, count, &out) != napi_ok) return throw_napi(env, "fixedBasePowMany");

  mpz_t acc, tmp, view;
  mpz_init2(acc, (mp_bitcnt_t)t->stride * GMP_NUMB_BITS);
  mpz_init2(tmp, (mp_bitcnt_t)t->stride * 2 * GMP_NUMB_BITS);
  for (uint32_t k = 0; k < count; k++) {
    napi_handle_scope scope;
    napi_value item, buf;
    const uint8_t *ep;
    size_t en;
    uint64_t bits;
    bool ok = false;
    NAPI_OR_THROW(env, "fixedBasePowMany", napi_open_handle_scope(env, &scope));
    snprintf(what, sizeof what, "fixedBasePowMany: exps[%u]", k);
    if (napi_get_element(env, argv[1], k, &item) != napi_ok) {
      throw_napi(env, what);
    } else if (!get_bytes(env, item, what, &ep, &en)) {
      /* TypeError pending */
    } else if (!fb_pow(t, ep, en, acc, tmp, view, &bits)) {
      throw_too_long(env, what, bits, t);
    } else if (export_be(env, acc, &buf)) {
      ok = napi_set_element(env, out, k, buf) == napi_ok;
      if (!ok) throw_napi(env, what);
    }
    napi_close_handle_scope(env, scope);
    if (!ok) goto fail;
  }
  result = out;
fail:
  mpz_clears(acc, tmp, NULL);
  return result;
}

/* ---------------------------------------------------------------------------------------------- */

static napi_value js_version(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value s;
  if (napi_create_string_utf8(env, gmp_version, NAPI_AUTO_LENGTH, &s) != napi_ok) return throw_napi(env, "version");
  return s;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"powm", NULL, js_powm, NULL, NULL, NULL, napi_enumerable, NULL},
      {"powmSec", NULL, js_powm_sec, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fixedBaseCreate", NULL, js_fixed_base_create, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fixedBasePow", NULL, js_fixed_base_pow, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fixedBasePowMany", NULL, js_fixed_base_pow_many, NULL, NULL, NULL, napi_enumerable, NULL},
      {"version", NULL, js_version, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gcd", NULL, js_gcd, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) {
    throw_napi(env, "cipherml_gmp init");
    return NULL;
  }
  return exports;
}
