/*
 * The hot path of a Python actor's lmdb store (improv_ts/stores/lmdb.py), one call each.
 *
 * Compiled into the same shared library as LMDB (see _liblmdb.py): through ctypes every call into C
 * costs ~0.5 us, and a sink's get of a small value took seven (the file check, renew, txn id, the
 * object record, the value, reset, and the copy), its delete's commit three per key. These do the
 * common case whole and leave anything else to the Python code they stand in for: whenever one
 * returns IMPROV_SLOW, the caller runs its step-by-step path, which finds the same thing and says
 * what it is (a missing key, a TTL, a closed or replaced store, a corrupt record), so no error is
 * worded here.
 *
 * The layout is packages/store/docs/lmdb.md's (version 1): an object record is six little-endian
 * f64 (sequence, charged, expires at, in flight, flags, created) then the value header; a value is
 * the header (u32 magic, u8 layout version, u8 dtype code, u8 ndim, u8 flags, u64 payload bytes,
 * ndim u64 dimensions) then the payload. On a big-endian machine improv_get leaves every read to
 * the Python path, which reads the little-endian fields as such.
 */
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lmdb.h"

#define IMPROV_OK 0
#define IMPROV_SLOW 1

#define MAGIC 0x56504D49u
#define LAYOUT_VERSION 1
#define HEADER_FIXED_BYTES 16
#define OBJECT_RECORD_BYTES 48
#define FLAG_UNWRITTEN 1
#define RECORD_UNWRITTEN 2

/* What improv_get reports in `info` (int64 each). */
enum {
  INFO_TXN_ID,      /* the snapshot's transaction id */
  INFO_SEQUENCE,    /* the object record's sequence */
  INFO_CHARGED,     /* the bytes it is charged (truncated, as Python's int()) */
  INFO_CODE,        /* the value header's dtype code */
  INFO_NDIM,        /* its number of dimensions */
  INFO_FLAGS,       /* its flags */
  INFO_BYTE_LENGTH, /* its payload bytes */
  INFO_START,       /* where the payload starts in the value (the header's bytes) */
  INFO_SIZE,        /* the value's bytes, copied to `out` */
  INFO_DIM0,        /* its first dimension (0 when it has none) */
  INFO_FIELDS
};

/* A double that is a whole number in [0, 2^53]; its value in *out. */
static int whole(double value, int64_t *out) {
  if (!(value >= 0 && value <= 9007199254740992.0)) return 0;
  *out = (int64_t)value;
  return (double)*out == value;
}

/*
 * What improv_get works with, set up once per client by lmdb.py (its `GetContext` mirrors it): the
 * client's read transaction (reset between calls), the store's data file and the inode and device it
 * had when opened, the snapshot whose session record was found to be this client's (`seen`, or
 * UINT64_MAX for none yet) and that record's bytes, the named databases, the number of dtype codes
 * and of dimensions a header may have, and `out`: INFO_FIELDS int64 then room for a value of
 * `capacity` bytes.
 */
struct improv_get_context {
  MDB_txn *txn;
  const char *path;
  uint64_t ino;
  uint64_t dev;
  uint64_t checked_at;
  uint64_t check_every;
  uint64_t seen;
  const char *session;
  size_t session_size;
  char *out;
  size_t capacity;
  MDB_dbi meta;
  MDB_dbi objects;
  MDB_dbi values;
  int32_t dtype_codes;
  int32_t max_ndim;
};

/*
 * get() of a value nobody may free behind its reader's back (no eviction, no TTL), as lmdb.py's
 * _snapshot(_read_unheld) does it: the store's data file is still the one opened, the reset read
 * transaction renews, its snapshot is `seen` or has the session record `session`, the object record
 * of `key` is there with no TTL and written, and its value is written, at most `capacity` bytes, with
 * a well-formed header and as long as it says. Then the value is copied to `out` after the info
 * fields and IMPROV_OK returned; otherwise IMPROV_SLOW, or an LMDB error (negative). The read
 * transaction is reset again either way.
 */
/* A value header at `value` (`size` bytes) as lmdb.py's _read_header accepts it; its ndim in *ndim. */
static int header_ok(const struct improv_get_context *c, const unsigned char *value, size_t size, int *ndim) {
  if (size < HEADER_FIXED_BYTES) return 0;
  uint32_t magic;
  memcpy(&magic, value, 4);
  int dtype = value[5];
  *ndim = value[6];
  return magic == MAGIC && value[4] == LAYOUT_VERSION && dtype < c->dtype_codes &&
         *ndim <= c->max_ndim && !(dtype == 0 && *ndim != 0) && size >= HEADER_FIXED_BYTES + 8 * (size_t)*ndim;
}

static int lookup(struct improv_get_context *c, const char *key, size_t key_size, int with_value);

int improv_get(struct improv_get_context *c, const char *key, size_t key_size) {
  return lookup(c, key, key_size, 1);
}

/*
 * The object record of `key`, for the delete of a key this client did not just read (lmdb.py's
 * _stage_delete): as improv_get, but only the record (its own copy of the value header checked), and
 * only INFO_TXN_ID, INFO_SEQUENCE and INFO_CHARGED filled in.
 */
int improv_record(struct improv_get_context *c, const char *key, size_t key_size) {
  return lookup(c, key, key_size, 0);
}

static int lookup(struct improv_get_context *c, const char *key, size_t key_size, int with_value) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
  (void)c, (void)key, (void)key_size, (void)with_value;
  return IMPROV_SLOW;
#endif
  /* The file check (a stat) at most every `check_every`, as the TypeScript client's reads do
   * (READ_FILES_CHECK_MS): a read that comes within that of the files' removal reads the values they
   * held, as one just before it did. */
  struct timespec clock;
  clock_gettime(CLOCK_MONOTONIC, &clock);
  uint64_t now = (uint64_t)clock.tv_sec * 1000000000u + (uint64_t)clock.tv_nsec;
  if (now - c->checked_at >= c->check_every) {
    struct stat file;
    if (stat(c->path, &file) != 0 || (uint64_t)file.st_ino != c->ino || (uint64_t)file.st_dev != c->dev)
      return IMPROV_SLOW;
    c->checked_at = now;
  }
  MDB_txn *txn = c->txn;
  int code = mdb_txn_renew(txn);
  if (code != MDB_SUCCESS) return code;
  int result = IMPROV_SLOW;
  MDB_val k, v;
  mdb_size_t id = mdb_txn_id(txn);
  if ((uint64_t)id != c->seen) {
    if (c->session == NULL) goto done;
    k.mv_size = 7;
    k.mv_data = "session";
    code = mdb_get(txn, c->meta, &k, &v);
    if (code != MDB_SUCCESS || v.mv_size != c->session_size || memcmp(v.mv_data, c->session, v.mv_size) != 0)
      goto done;
  }
  k.mv_size = key_size;
  k.mv_data = (void *)key;
  code = mdb_get(txn, c->objects, &k, &v);
  if (code != MDB_SUCCESS || v.mv_size < OBJECT_RECORD_BYTES + HEADER_FIXED_BYTES) goto done;
  double fields[6];
  memcpy(fields, v.mv_data, sizeof fields);
  int64_t sequence, record_flags;
  /* expires at: a TTL takes the held path */
  if (!(fields[2] <= 0) || !whole(fields[0], &sequence) || !whole(fields[4], &record_flags) ||
      (record_flags & RECORD_UNWRITTEN) || !(fields[1] >= 0 && fields[1] < 9007199254740992.0))
    goto done;
  int64_t charged = (int64_t)fields[1];
  int64_t *info = (int64_t *)c->out;
  if (!with_value) {
    int ndim;
    if (!header_ok(c, (const unsigned char *)v.mv_data + OBJECT_RECORD_BYTES, v.mv_size - OBJECT_RECORD_BYTES, &ndim))
      goto done;
    info[INFO_TXN_ID] = (int64_t)id;
    info[INFO_SEQUENCE] = sequence;
    info[INFO_CHARGED] = charged;
    result = IMPROV_OK;
    goto done;
  }
  code = mdb_get(txn, c->values, &k, &v);
  if (code != MDB_SUCCESS || v.mv_size < HEADER_FIXED_BYTES || v.mv_size > c->capacity) goto done;
  const unsigned char *value = v.mv_data;
  uint32_t magic;
  uint64_t byte_length;
  memcpy(&magic, value, 4);
  memcpy(&byte_length, value + 8, 8);
  int dtype = value[5], ndim = value[6], flags = value[7];
  size_t start = HEADER_FIXED_BYTES + 8 * (size_t)ndim;
  if (magic != MAGIC || value[4] != LAYOUT_VERSION || dtype >= c->dtype_codes || ndim > c->max_ndim ||
      (dtype == 0 && ndim != 0) || (flags & FLAG_UNWRITTEN) || v.mv_size < start || byte_length > v.mv_size - start)
    goto done;
  memcpy(c->out + INFO_FIELDS * sizeof(int64_t), value, v.mv_size);
  info[INFO_TXN_ID] = (int64_t)id;
  info[INFO_SEQUENCE] = sequence;
  info[INFO_CHARGED] = charged;
  info[INFO_CODE] = dtype;
  info[INFO_NDIM] = ndim;
  info[INFO_FLAGS] = flags;
  info[INFO_BYTE_LENGTH] = (int64_t)byte_length;
  info[INFO_START] = (int64_t)start;
  info[INFO_SIZE] = (int64_t)v.mv_size;
  uint64_t dim0 = 0;
  if (ndim > 0) memcpy(&dim0, value + HEADER_FIXED_BYTES, 8);
  info[INFO_DIM0] = (int64_t)dim0;
  result = IMPROV_OK;
done:
  mdb_txn_reset(txn);
  return code == MDB_SUCCESS || code == MDB_NOTFOUND ? result : code;
}

/*
 * Removes `key` through `cursor` (MDB_NOTFOUND when it is not there). A cursor left on the page where
 * the key of the previous delete was finds the next one on that page without a search from the root
 * (mdb_cursor_set), and a batch's keys come in the order they were stored, mostly neighbours.
 */
static int cursor_delete(MDB_cursor *cursor, MDB_val *key) {
  MDB_val data;
  int code = mdb_cursor_get(cursor, key, &data, MDB_SET);
  if (code != MDB_SUCCESS) return code;
  return mdb_cursor_del(cursor, 0);
}

/*
 * The commit's share of deletes of values read just before (lmdb.py's _commit_staged): for each of
 * `count` keys, packed one after the other in `keys` with their lengths in `lengths`, removes the
 * object record in `objects` and, when there was one, the value in `values` and the order entry in
 * `order` (key: the record's sequence `sequences[i]`, u64 big-endian). Where there was a record,
 * freed[0] counts one more value and freed[1] adds its `charged[i]` bytes. Returns MDB_SUCCESS or the
 * first LMDB error (the write transaction is then to be aborted).
 */
int improv_delete_read(MDB_txn *txn, MDB_dbi objects, MDB_dbi values, MDB_dbi order, const char *keys,
                       const uint32_t *lengths, const uint64_t *sequences, const double *charged, size_t count,
                       double *freed) {
  MDB_cursor *cursors[3] = {NULL, NULL, NULL};
  MDB_dbi dbis[3] = {objects, values, order};
  int code = MDB_SUCCESS;
  for (int d = 0; d < 3 && code == MDB_SUCCESS; d++) code = mdb_cursor_open(txn, dbis[d], &cursors[d]);
  const char *at = keys;
  for (size_t i = 0; i < count && code == MDB_SUCCESS; i++) {
    MDB_val k = {lengths[i], (void *)at};
    at += lengths[i];
    code = cursor_delete(cursors[0], &k);
    if (code == MDB_NOTFOUND) {
      code = MDB_SUCCESS;
      continue;
    }
    if (code != MDB_SUCCESS) break;
    freed[0] += 1;
    freed[1] += charged[i];
    code = cursor_delete(cursors[1], &k);
    if (code == MDB_NOTFOUND) code = MDB_SUCCESS;
    if (code != MDB_SUCCESS) break;
    unsigned char sort_key[8];
    for (int b = 0; b < 8; b++) sort_key[b] = (unsigned char)(sequences[i] >> (56 - 8 * b));
    MDB_val s = {8, sort_key};
    code = cursor_delete(cursors[2], &s);
    if (code == MDB_NOTFOUND) code = MDB_SUCCESS;
  }
  for (int d = 0; d < 3; d++)
    if (cursors[d] != NULL) mdb_cursor_close(cursors[d]);
  return code;
}

/* An f64 of the meta database, little-endian as lmdb.py's _F64 (0 when absent or not 8 bytes). */
static int read_counter(MDB_txn *txn, MDB_dbi meta, MDB_val *name, double *value) {
  MDB_val v;
  int code = mdb_get(txn, meta, name, &v);
  *value = 0;
  if (code == MDB_NOTFOUND) return MDB_SUCCESS;
  if (code != MDB_SUCCESS) return code;
  if (v.mv_size != 8) return MDB_SUCCESS;
  const unsigned char *b = v.mv_data;
  uint64_t bits = 0;
  for (int i = 7; i >= 0; i--) bits = (bits << 8) | b[i];
  memcpy(value, &bits, 8);
  return MDB_SUCCESS;
}

/* Subtracts `amount` from the meta counter `name`, at least 0 (Python's max(0, value - amount)). */
static int subtract_counter(MDB_txn *txn, MDB_dbi meta, const char *name, double amount) {
  MDB_val k = {strlen(name), (void *)name};
  double value;
  int code = read_counter(txn, meta, &k, &value);
  if (code != MDB_SUCCESS) return code;
  value -= amount;
  if (!(value > 0)) value = 0;
  uint64_t bits;
  memcpy(&bits, &value, 8);
  unsigned char out[8];
  for (int i = 0; i < 8; i++, bits >>= 8) out[i] = (unsigned char)bits;
  MDB_val v = {8, out};
  return mdb_put(txn, meta, &k, &v, 0);
}

/*
 * lmdb.py's _count_freed: `values` values of `bytes` charged bytes were freed; the meta counters
 * usedBytes and objects go down by as much (never below 0). Two reads and two writes that cost four
 * ctypes calls and their packing in Python, at every commit of a batch of deletes.
 */
int improv_count_freed(MDB_txn *txn, MDB_dbi meta, double values, double bytes) {
  int code = subtract_counter(txn, meta, "usedBytes", bytes);
  if (code != MDB_SUCCESS) return code;
  return subtract_counter(txn, meta, "objects", values);
}
