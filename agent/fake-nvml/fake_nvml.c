/*
 * Fake libnvidia-ml.so.1 for tests: the real NVML ABI (versioned symbol names, signatures,
 * return codes, struct layouts) driven by a line-oriented `key=value` state file whose path
 * comes from env GPUDIAG_FAKE_NVML_STATE. The file is re-read whenever its inode, size or
 * mtime changes, so tests can inject faults into a running process (writers rename()).
 *
 * Keys (all optional; a missing key makes the matching call return NOT_SUPPORTED):
 *   driver_version, nvml_version, cuda_version, device_count, init_error,
 *   error.<nvmlFunction>=<code>, delay_ms.<nvmlFunction>=<ms>,
 *   event.<id>=<gpuIndex>,<eventType>,<eventData>     (id: unique positive integer)
 *   gpu.<i>.<field>=..., gpu.<i>.lost=1, gpu.<i>.error.<fn|*>=<code>, gpu.<i>.delay_ms.<fn>=<ms>
 *   driver_era (init fails with LIB_RM_VERSION_MISMATCH unless it names this build's era),
 *   libcuda=1 (libcuda.so.1 is mounted: nvmlSystemGetCudaDriverVersion_v2 works),
 *   process_record_bytes (what _v3 writes per record, overriding the era's size)
 *
 * One build per driver era (agent/fake-nvml/eras.ts passes the macros): GPUDIAG_FAKE_ERA names
 * it; GPUDIAG_FAKE_NO_PROCESSES_V3, GPUDIAG_FAKE_NO_CLOCKS_EVENT_REASONS and
 * GPUDIAG_FAKE_NO_MEMORY_V2 leave those symbols out, as older drivers do;
 * GPUDIAG_FAKE_PROCESS_V3_BYTES sets _v3's record size (32 on 535.43-535.86);
 * GPUDIAG_FAKE_TEMPERATURE_V, GPUDIAG_FAKE_RECOVERY_ACTION and GPUDIAG_FAKE_NVLINK5_FIELDS add
 * what R570 brought. Built by agent/fake-nvml/build.ts; never committed as a binary.
 * Inventory and fabric (device-info block below): GPUDIAG_FAKE_NO_FABRIC_INFO leaves out
 * nvmlDeviceGetGpuFabricInfo (before R525), GPUDIAG_FAKE_FABRIC_INFO_V adds
 * nvmlDeviceGetGpuFabricInfoV (R550+), GPUDIAG_FAKE_FABRIC_INFO_V3 lets it take the v3 struct,
 * GPUDIAG_FAKE_NO_PCIE_COUNTERS drops the PCIe error-count field ids (R535 added them) and
 * GPUDIAG_FAKE_MEMORY_EVENTS knows the ECC-storm, DRAM-retirement and poison events (R560+).
 * GPUDIAG_FAKE_NO_NVLINK_DL_FIELDS drops the link-scoped NVLink ids 161-163 (DL counters) and
 * 165 (link state) (the r470 build: the agent must then read them call by call).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

typedef int nvmlReturn_t;
enum {
  NVML_SUCCESS = 0, NVML_ERROR_UNINITIALIZED = 1, NVML_ERROR_INVALID_ARGUMENT = 2,
  NVML_ERROR_NOT_SUPPORTED = 3, NVML_ERROR_NOT_FOUND = 6, NVML_ERROR_INSUFFICIENT_SIZE = 7,
  NVML_ERROR_DRIVER_NOT_LOADED = 9, NVML_ERROR_TIMEOUT = 10, NVML_ERROR_LIBRARY_NOT_FOUND = 12,
  NVML_ERROR_GPU_IS_LOST = 15, NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18,
  NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25, NVML_ERROR_UNKNOWN = 999
};

#ifndef GPUDIAG_FAKE_ERA
#define GPUDIAG_FAKE_ERA "r550"
#endif
#ifndef GPUDIAG_FAKE_PROCESS_V3_BYTES
#define GPUDIAG_FAKE_PROCESS_V3_BYTES 24
#endif

#define MAX_GPUS 64
#define MAX_EVENT_SETS 64
#define MAX_DELIVERED 4096
#define MAX_NVLINKS 18
#define HASH_SIZE 16384
#define EVENT_POLL_MS 5
#define NO_INSTANCE 0xFFFFFFFFu
#define MAX_COUNTED_FNS 128
#define CALL_SLOTS 512
#define EVENT_GPU_RECOVERY_ACTION 0x8000ull

struct nvmlDevice_st { int index; };
typedef struct nvmlDevice_st *nvmlDevice_t;

struct nvmlEventSet_st {
  int used;
  unsigned long long mask[MAX_GPUS];
  long delivered[MAX_DELIVERED];
  int delivered_count;
};
typedef struct nvmlEventSet_st *nvmlEventSet_t;

typedef struct {
  char busIdLegacy[16];
  unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
  char busId[32];
} nvmlPciInfo_t;

typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct {
  unsigned int version;
  unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t;
typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;
/* what 535.43-535.86 wrote from _v3 */
typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId, computeInstanceId;
  unsigned long long usedGpuCcProtectedMemory;
} nvmlProcessInfo_cc_t;
typedef struct { unsigned int version; int sensorType; int temperature; } nvmlTemperature_v1_t;
typedef union {
  double dVal;
  unsigned int uiVal;
  unsigned long ulVal;
  unsigned long long ullVal;
  long long sllVal;
  int siVal;
  unsigned short usVal;
} nvmlValue_t;
typedef struct {
  unsigned int fieldId, scopeId;
  long long timestamp, latencyUsec;
  int valueType;
  nvmlReturn_t nvmlReturn;
  nvmlValue_t value;
} nvmlFieldValue_t;
typedef struct {
  nvmlDevice_t device;
  unsigned long long eventType, eventData;
  unsigned int gpuInstanceId, computeInstanceId;
} nvmlEventData_t;

_Static_assert(sizeof(nvmlPciInfo_t) == 68, "nvmlPciInfo_t layout");
_Static_assert(sizeof(nvmlMemory_v2_t) == 40, "nvmlMemory_v2_t layout");
_Static_assert(sizeof(nvmlProcessInfo_v1_t) == 16, "nvmlProcessInfo_v1_t layout");
_Static_assert(sizeof(nvmlProcessInfo_t) == 24, "nvmlProcessInfo_t layout");
_Static_assert(sizeof(nvmlProcessInfo_cc_t) == 32, "535.43 process record layout");
_Static_assert(sizeof(nvmlTemperature_v1_t) == 12, "nvmlTemperature_v1_t layout");
_Static_assert(sizeof(nvmlFieldValue_t) == 40, "nvmlFieldValue_t layout");
_Static_assert(GPUDIAG_FAKE_PROCESS_V3_BYTES == 16 || GPUDIAG_FAKE_PROCESS_V3_BYTES == 24 || GPUDIAG_FAKE_PROCESS_V3_BYTES == 32, "process record size");
_Static_assert(sizeof(nvmlEventData_t) == 32, "nvmlEventData_t layout");

#define MEMORY_V2_VERSION 0x02000028u
/* NVML_STRUCT_VERSION(Temperature, 1) */
#define TEMPERATURE_V1_VERSION ((unsigned int)sizeof(nvmlTemperature_v1_t) | (1u << 24))

/* ---- state: a hash table of key=value lines, replaced wholesale on reload ---- */

typedef struct { char *key; char *value; } entry_t;
typedef struct {
  char *text;          /* owned file contents; keys/values point into it */
  entry_t *entries;
  int count;
  int *slots;          /* HASH_SIZE open-addressing slots: entry index + 1, 0 = empty */
  /* facts every call needs, found once per load: most states inject no delay and no error */
  int has_delays;      /* some key holds `delay_ms.` */
  int has_errors;      /* some key starts with `error.` or holds `.error.` */
  long device_count;
  unsigned char lost[MAX_GPUS];
  /* gpu.<i>.nvlink.count (0: none or absent) and .generation, read on every NVLink call */
  unsigned int nvlink_count[MAX_GPUS];
  unsigned int nvlink_generation[MAX_GPUS];
} state_t;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static state_t g_state;
static char g_path[4096];
static char g_override[4096];
static dev_t g_dev_id; static ino_t g_ino; static off_t g_size;
static struct timespec g_mtime;
static int g_loaded;
/*
 * `<state file>.generation`, mapped: the test controller bumps its 8 bytes after publishing each
 * state, so a call sees whether a new state exists with one memory read instead of a stat() of
 * the path (a snapshot makes hundreds of calls). NULL (no such file): stat on every call.
 */
static const uint64_t *g_generation;
static uint64_t g_seen_generation;
static int g_refcount;
static struct nvmlDevice_st g_devices[MAX_GPUS];
/* MIG device handles: slot k of GPU i is g_mig[i][k] (nvml.h: at most 7 per GPU on A100/H100). */
#define MAX_MIG 8
static struct nvmlDevice_st g_mig[MAX_GPUS][MAX_MIG];
static struct nvmlEventSet_st g_sets[MAX_EVENT_SETS];

static atomic_int g_init_count, g_shutdown_count, g_inflight, g_shutdown_busy, g_reload_count;
static atomic_int g_max_inflight;
/* calls per NVML function (test hook); written under g_mu */
static struct { const char *name; int count; } g_calls[MAX_COUNTED_FNS];
static int g_calls_used;
/* function-name pointer -> g_calls index (fn NULL: empty slot) */
static struct call_slot { const char *fn; int index; } g_call_slots[CALL_SLOTS];
/* events delivered by sets freed in this NVML session: a set opened later does not get them again */
static long g_consumed[MAX_DELIVERED];
static int g_consumed_count;

static unsigned hash_str(const char *s) {
  unsigned h = 2166136261u;
  while (*s) { h ^= (unsigned char)*s++; h *= 16777619u; }
  return h;
}

static void state_free(state_t *s) {
  free(s->text); free(s->entries); free(s->slots);
  memset(s, 0, sizeof(*s));
}

static const char *lookup(const char *key) {
  if (!g_state.slots) return NULL;
  unsigned h = hash_str(key) & (HASH_SIZE - 1);
  for (int probe = 0; probe < HASH_SIZE; probe++) {
    int slot = g_state.slots[(h + probe) & (HASH_SIZE - 1)];
    if (slot == 0) return NULL;
    if (strcmp(g_state.entries[slot - 1].key, key) == 0) return g_state.entries[slot - 1].value;
  }
  return NULL;
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  char *e = s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) *--e = 0;
  return s;
}

static int parse_state(char *text, state_t *out) {
  int cap = 1;
  for (char *p = text; *p; p++) if (*p == '\n') cap++;
  if (cap >= HASH_SIZE / 2) return -1;
  out->text = text;
  out->entries = calloc((size_t)cap, sizeof(entry_t));
  out->slots = calloc(HASH_SIZE, sizeof(int));
  if (!out->entries || !out->slots) return -1;
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char *t = trim(line);
    if (*t == 0 || *t == '#') continue;
    char *eq = strchr(t, '=');
    if (!eq) continue;
    *eq = 0;
    char *key = trim(t), *value = trim(eq + 1);
    if (strstr(key, "delay_ms.")) out->has_delays = 1;
    if (strncmp(key, "error.", 6) == 0 || strstr(key, ".error.")) out->has_errors = 1;
    unsigned h = hash_str(key) & (HASH_SIZE - 1);
    for (int probe = 0; probe < HASH_SIZE; probe++) {
      int *slot = &out->slots[(h + probe) & (HASH_SIZE - 1)];
      if (*slot == 0) {
        out->entries[out->count] = (entry_t){ key, value };
        *slot = ++out->count;
        break;
      }
      if (strcmp(out->entries[*slot - 1].key, key) == 0) { out->entries[*slot - 1].value = value; break; }
    }
  }
  return 0;
}

static long global_num(const char *key, long def);

/* Maps the generation file next to g_path (caller holds g_mu); without one, every call stats. */
static void map_generation(void) {
  if (g_generation) munmap((void *)g_generation, sizeof(uint64_t));
  g_generation = NULL;
  char gen[sizeof(g_path) + 16];
  snprintf(gen, sizeof(gen), "%s.generation", g_path);
  int fd = open(gen, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  if (fstat(fd, &st) == 0 && st.st_size >= (off_t)sizeof(uint64_t)) {
    void *map = mmap(NULL, sizeof(uint64_t), PROT_READ, MAP_SHARED, fd, 0);
    if (map != MAP_FAILED) {
      g_generation = map;
      g_seen_generation = __atomic_load_n(g_generation, __ATOMIC_ACQUIRE);
    }
  }
  close(fd);
}

/* True when the state file may have changed since the last check. */
static int state_may_have_changed(void) {
  if (!g_generation) return 1;
  uint64_t now = __atomic_load_n(g_generation, __ATOMIC_ACQUIRE);
  if (now == g_seen_generation) return 0;
  g_seen_generation = now;
  return 1;
}

/* Re-reads the state file when it changed (caller holds g_mu). Returns 0 when a state is loaded. */
static int maybe_reload(void) {
  struct stat st;
  if (g_loaded && !state_may_have_changed()) return 0;
  if (g_path[0] == 0 || stat(g_path, &st) != 0) return g_loaded ? 0 : -1;
  if (g_loaded && st.st_ino == g_ino && st.st_dev == g_dev_id && st.st_size == g_size &&
      st.st_mtim.tv_sec == g_mtime.tv_sec && st.st_mtim.tv_nsec == g_mtime.tv_nsec) return 0;
  FILE *f = fopen(g_path, "rb");
  if (!f) return g_loaded ? 0 : -1;
  char *text = malloc((size_t)st.st_size + 1);
  size_t n = text ? fread(text, 1, (size_t)st.st_size, f) : 0;
  fclose(f);
  if (!text) return g_loaded ? 0 : -1;
  text[n] = 0;
  state_t next = {0};
  if (parse_state(text, &next) != 0) { free(next.entries); free(next.slots); free(text); return g_loaded ? 0 : -1; }
  state_free(&g_state);
  g_state = next;
  g_state.device_count = global_num("device_count", 0);
  for (int gi = 0; gi < MAX_GPUS; gi++) {
    char key[64];
    snprintf(key, sizeof(key), "gpu.%d.lost", gi);
    g_state.lost[gi] = global_num(key, 0) != 0;
    snprintf(key, sizeof(key), "gpu.%d.nvlink.count", gi);
    g_state.nvlink_count[gi] = (unsigned int)global_num(key, 0);
    snprintf(key, sizeof(key), "gpu.%d.nvlink.generation", gi);
    g_state.nvlink_generation[gi] = (unsigned int)global_num(key, 0);
  }
  g_ino = st.st_ino; g_dev_id = st.st_dev; g_size = st.st_size; g_mtime = st.st_mtim;
  g_loaded = 1;
  atomic_fetch_add(&g_reload_count, 1);
  return 0;
}

/* Writes the decimal digits of v at p; returns the end (no terminator). */
static char *put_uint(char *p, unsigned v) {
  char digits[10];
  int n = 0;
  do { digits[n++] = (char)('0' + v % 10); v /= 10; } while (v != 0);
  while (n > 0) *p++ = digits[--n];
  return p;
}

/*
 * The value of `gpu.<gi>.<field>`, or of `gpu.<gi>.nvlink.<link>.<field>` when link >= 0. Keys
 * are built by hand: a snapshot makes a thousand lookups and snprintf was most of their cost.
 */
static const char *gpu_link_str(int gi, int link, const char *field) {
  char key[256];
  size_t len = strlen(field);
  if (gi < 0 || len > 200) return NULL;
  char *p = key;
  memcpy(p, "gpu.", 4);
  p = put_uint(p + 4, (unsigned)gi);
  *p++ = '.';
  if (link >= 0) {
    memcpy(p, "nvlink.", 7);
    p = put_uint(p + 7, (unsigned)link);
    *p++ = '.';
  }
  memcpy(p, field, len + 1);
  return lookup(key);
}

static const char *gpu_str(int gi, const char *field) {
  return gpu_link_str(gi, -1, field);
}

/* gpu_u64 for a field of one NVLink (`nvlink.<link>.<field>`). */
static int link_u64(int gi, unsigned int link, const char *field, unsigned long long *out) {
  const char *v = gpu_link_str(gi, (int)link, field);
  if (!v || !*v) return 0;
  *out = strtoull(v, NULL, 0);
  return 1;
}

static int gpu_u64(int gi, const char *field, unsigned long long *out) {
  const char *v = gpu_str(gi, field);
  if (!v || !*v) return 0;
  *out = strtoull(v, NULL, 0);
  return 1;
}

static int gpu_u32(int gi, const char *field, unsigned int *out) {
  unsigned long long v;
  if (!gpu_u64(gi, field, &v)) return 0;
  *out = (unsigned int)v;
  return 1;
}

static long global_num(const char *key, long def) {
  const char *v = lookup(key);
  return v && *v ? strtol(v, NULL, 0) : def;
}

static void sleep_ms(long ms) {
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}

static void enter_call(void) {
  int now = atomic_fetch_add(&g_inflight, 1) + 1;
  int max = atomic_load(&g_max_inflight);
  while (now > max && !atomic_compare_exchange_weak(&g_max_inflight, &max, now)) {}
}

static void leave_call(void) { atomic_fetch_sub(&g_inflight, 1); }

/*
 * Counts one call of fn (caller holds g_mu). Found by pointer (every call site passes a string
 * literal), as a snapshot makes hundreds of calls; a name seen through another pointer shares
 * its entry.
 */
static void count_call(const char *fn) {
  unsigned h = (unsigned)(((uintptr_t)fn >> 3) * 2654435761u);
  for (int probe = 0; probe < CALL_SLOTS; probe++) {
    struct call_slot *slot = &g_call_slots[(h + (unsigned)probe) & (CALL_SLOTS - 1)];
    if (slot->fn == fn) { g_calls[slot->index].count++; return; }
    if (slot->fn != NULL) continue;
    int i = 0;
    while (i < g_calls_used && strcmp(g_calls[i].name, fn) != 0) i++;
    if (i == g_calls_used) {
      if (g_calls_used == MAX_COUNTED_FNS) return;
      g_calls[i].name = fn;
      g_calls[i].count = 0;
      g_calls_used++;
    }
    slot->fn = fn;
    slot->index = i;
    g_calls[i].count++;
    return;
  }
}

/* Delay configured for fn (per GPU first, then global); gi < 0 for system calls (caller holds g_mu). */
static long delay_locked(const char *fn, int gi) {
  if (!g_state.has_delays) return 0;
  char key[256];
  long ms = -1;
  if (gi >= 0) {
    snprintf(key, sizeof(key), "gpu.%d.delay_ms.%s", gi, fn);
    ms = global_num(key, -1);
  }
  if (ms < 0) {
    snprintf(key, sizeof(key), "delay_ms.%s", fn);
    ms = global_num(key, 0);
  }
  return ms;
}

static long delay_for(const char *fn, int gi) {
  pthread_mutex_lock(&g_mu);
  maybe_reload();
  long ms = delay_locked(fn, gi);
  pthread_mutex_unlock(&g_mu);
  return ms;
}

/* Takes g_mu on a fresh state, after sleeping (unlocked) the delay configured for fn. */
static void lock_after_delay(const char *fn, int gi) {
  pthread_mutex_lock(&g_mu);
  maybe_reload();
  long ms = delay_locked(fn, gi);
  if (ms <= 0) return;
  pthread_mutex_unlock(&g_mu);
  sleep_ms(ms);
  pthread_mutex_lock(&g_mu);
  maybe_reload();
}

static int handle_index(nvmlDevice_t device) {
  if (device < g_devices || device >= g_devices + MAX_GPUS) return -1;
  return (int)(device - g_devices);
}

/* The parent GPU of a MIG device handle (and its slot), or -1 for any other handle. */
static int mig_parent(nvmlDevice_t device, int *slot) {
  struct nvmlDevice_st *first = &g_mig[0][0];
  if (device < first || device >= first + MAX_GPUS * MAX_MIG) return -1;
  long offset = (long)(device - first);
  *slot = (int)(offset % MAX_MIG);
  return (int)(offset / MAX_MIG);
}

/*
 * Common entry for device calls: counts the call, applies the delay, takes the lock and
 * checks init, handle, lost and injected errors. On success the lock is HELD.
 */
static nvmlReturn_t dev_enter(const char *fn, int gi) {
  enter_call();
  if (gi < 0 || gi >= MAX_GPUS) return NVML_ERROR_INVALID_ARGUMENT;
  lock_after_delay(fn, gi);
  count_call(fn);
  nvmlReturn_t rc = NVML_SUCCESS;
  char key[256];
  if (g_refcount == 0) rc = NVML_ERROR_UNINITIALIZED;
  else if (gi >= g_state.device_count) rc = NVML_ERROR_INVALID_ARGUMENT;
  else if (g_state.lost[gi]) rc = NVML_ERROR_GPU_IS_LOST;
  else if (g_state.has_errors) {
    long code = global_num((snprintf(key, sizeof(key), "gpu.%d.error.%s", gi, fn), key), 0);
    if (code == 0) code = global_num((snprintf(key, sizeof(key), "gpu.%d.error.*", gi), key), 0);
    if (code == 0) code = global_num((snprintf(key, sizeof(key), "error.%s", fn), key), 0);
    rc = (nvmlReturn_t)code;
  }
  if (rc != NVML_SUCCESS) pthread_mutex_unlock(&g_mu);
  return rc;
}

static nvmlReturn_t sys_enter(const char *fn) {
  enter_call();
  lock_after_delay(fn, -1);
  count_call(fn);
  char key[256];
  nvmlReturn_t rc = g_refcount == 0   ? NVML_ERROR_UNINITIALIZED
                    : !g_state.has_errors ? NVML_SUCCESS
                                          : (nvmlReturn_t)global_num((snprintf(key, sizeof(key), "error.%s", fn), key), 0);
  if (rc != NVML_SUCCESS) pthread_mutex_unlock(&g_mu);
  return rc;
}

/* Releases the lock taken by a successful dev_enter/sys_enter and ends the call. */
static nvmlReturn_t done(nvmlReturn_t rc) {
  pthread_mutex_unlock(&g_mu);
  leave_call();
  return rc;
}

static nvmlReturn_t fail(nvmlReturn_t rc) {
  leave_call();
  return rc;
}

#define DEV_BEGIN(fn) \
  int gi = handle_index(device); \
  nvmlReturn_t rc_ = dev_enter(fn, gi); \
  if (rc_ != NVML_SUCCESS) return fail(rc_)

#define SYS_BEGIN(fn) \
  nvmlReturn_t rc_ = sys_enter(fn); \
  if (rc_ != NVML_SUCCESS) return fail(rc_)

static nvmlReturn_t copy_str(const char *value, char *buf, unsigned int len) {
  if (!value) return NVML_ERROR_NOT_SUPPORTED;
  if (!buf) return NVML_ERROR_INVALID_ARGUMENT;
  if (strlen(value) + 1 > len) return NVML_ERROR_INSUFFICIENT_SIZE;
  strcpy(buf, value);
  return NVML_SUCCESS;
}

/* ---- init / shutdown / errors ---- */

/* Points the library at another state file (caller holds g_mu). */
static void switch_path(const char *path) {
  if (strcmp(path, g_path) == 0) return;
  snprintf(g_path, sizeof(g_path), "%s", path);
  g_loaded = 0;
  state_free(&g_state);
  map_generation();
}

static nvmlReturn_t do_init(void) {
  pthread_mutex_lock(&g_mu);
  atomic_fetch_add(&g_init_count, 1);
  /* an explicit path (set by in-process tests) wins over the environment */
  const char *path = g_override[0] ? g_override : getenv("GPUDIAG_FAKE_NVML_STATE");
  if (!path || !*path) { pthread_mutex_unlock(&g_mu); return NVML_ERROR_DRIVER_NOT_LOADED; }
  switch_path(path);
  if (maybe_reload() != 0) { pthread_mutex_unlock(&g_mu); return NVML_ERROR_DRIVER_NOT_LOADED; }
  nvmlReturn_t rc = (nvmlReturn_t)global_num("init_error", 0);
  /* a state file written for another driver era is a kernel driver this library does not match */
  const char *era = lookup("driver_era");
  if (rc == NVML_SUCCESS && era && strcmp(era, GPUDIAG_FAKE_ERA) != 0) rc = NVML_ERROR_LIB_RM_VERSION_MISMATCH;
  if (rc == NVML_SUCCESS) g_refcount++;
  pthread_mutex_unlock(&g_mu);
  if (rc == NVML_SUCCESS) {
    long ms = delay_for("nvmlInit_v2", -1);
    if (ms > 0) sleep_ms(ms);
  }
  return rc;
}

EXPORT nvmlReturn_t nvmlInit_v2(void) { return do_init(); }
EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags) { (void)flags; return do_init(); }

EXPORT nvmlReturn_t nvmlShutdown(void) {
  pthread_mutex_lock(&g_mu);
  nvmlReturn_t rc = NVML_SUCCESS;
  if (g_refcount == 0) rc = NVML_ERROR_UNINITIALIZED;
  else {
    g_refcount--;
    if (g_refcount == 0) g_consumed_count = 0;
    atomic_fetch_add(&g_shutdown_count, 1);
    if (atomic_load(&g_inflight) > 0) atomic_fetch_add(&g_shutdown_busy, 1);
  }
  pthread_mutex_unlock(&g_mu);
  return rc;
}

EXPORT const char *nvmlErrorString(nvmlReturn_t rc) {
  switch (rc) {
    case 0: return "Success";
    case 1: return "Uninitialized";
    case 2: return "Invalid Argument";
    case 3: return "Not Supported";
    case 4: return "Insufficient Permissions";
    case 5: return "Already Initialized";
    case 6: return "Not Found";
    case 7: return "Insufficient Size";
    case 8: return "Insufficient External Power";
    case 9: return "Driver Not Loaded";
    case 10: return "Timeout";
    case 11: return "Interrupt request issue";
    case 12: return "NVML Shared Library Not Found";
    case 13: return "Function Not Found";
    case 14: return "Corrupted infoROM";
    case 15: return "GPU is lost";
    case 16: return "GPU requires restart";
    case 17: return "The operating system has blocked the request.";
    case 18: return "RM has detected an NVML/RM version mismatch.";
    case 19: return "In use by another client";
    case 20: return "Insufficient Memory";
    case 21: return "No data";
    case 22: return "The requested vgpu operation is not available on target device, becasue ECC is enabled";
    case 23: return "Insufficient resources for request";
    case 24: return "Frequency not supported";
    case 25: return "Argument version mismatch";
    case 26: return "Deprecated";
    case 27: return "Not ready";
    case 28: return "GPU not found";
    case 29: return "Invalid state";
    case 30: return "Reset type not supported";
    default: return "Unknown Error";
  }
}

/* ---- system queries ---- */

EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
  SYS_BEGIN("nvmlSystemGetDriverVersion");
  return done(copy_str(lookup("driver_version"), version, length));
}

EXPORT nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length) {
  SYS_BEGIN("nvmlSystemGetNVMLVersion");
  return done(copy_str(lookup("nvml_version"), version, length));
}

static nvmlReturn_t cuda_version(int *out) {
  if (!out) return NVML_ERROR_INVALID_ARGUMENT;
  const char *v = lookup("cuda_version");
  if (!v) return NVML_ERROR_NOT_SUPPORTED;
  *out = (int)strtol(v, NULL, 0);
  return NVML_SUCCESS;
}

/* NVML's own answer (what nvidia-smi prints): needs no libcuda */
EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *cudaDriverVersion) {
  SYS_BEGIN("nvmlSystemGetCudaDriverVersion");
  return done(cuda_version(cudaDriverVersion));
}

/* asks libcuda.so.1, which a container with only the "utility" capability does not have */
EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *cudaDriverVersion) {
  SYS_BEGIN("nvmlSystemGetCudaDriverVersion_v2");
  if (global_num("libcuda", 0) == 0) return done(NVML_ERROR_LIBRARY_NOT_FOUND);
  return done(cuda_version(cudaDriverVersion));
}

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *deviceCount) {
  SYS_BEGIN("nvmlDeviceGetCount_v2");
  if (!deviceCount) return done(NVML_ERROR_INVALID_ARGUMENT);
  long n = global_num("device_count", 0);
  *deviceCount = (unsigned int)(n < 0 ? 0 : n > MAX_GPUS ? MAX_GPUS : n);
  return done(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
  if (index >= MAX_GPUS) return NVML_ERROR_INVALID_ARGUMENT;
  int gi = (int)index;
  /* lost GPUs still yield a handle; only injected errors fail here */
  enter_call();
  long ms = delay_for("nvmlDeviceGetHandleByIndex_v2", gi);
  if (ms > 0) sleep_ms(ms);
  pthread_mutex_lock(&g_mu);
  maybe_reload();
  count_call("nvmlDeviceGetHandleByIndex_v2");
  char key[256];
  nvmlReturn_t rc = NVML_SUCCESS;
  if (g_refcount == 0) rc = NVML_ERROR_UNINITIALIZED;
  else if (gi >= global_num("device_count", 0)) rc = NVML_ERROR_INVALID_ARGUMENT;
  else {
    long code = global_num((snprintf(key, sizeof(key), "gpu.%d.error.nvmlDeviceGetHandleByIndex_v2", gi), key), 0);
    if (code == 0) code = global_num((snprintf(key, sizeof(key), "gpu.%d.error.*", gi), key), 0);
    rc = (nvmlReturn_t)code;
  }
  if (rc == NVML_SUCCESS) {
    if (!device) rc = NVML_ERROR_INVALID_ARGUMENT;
    else { g_devices[gi].index = gi; *device = &g_devices[gi]; }
  }
  return done(rc);
}

/* ---- identity ---- */

EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
  DEV_BEGIN("nvmlDeviceGetName");
  return done(copy_str(gpu_str(gi, "name"), name, length));
}

EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
  int slot = 0;
  int parent = mig_parent(device, &slot);
  if (parent >= 0) {
    /* a MIG device answers for itself, and fails like its parent (GPU_IS_LOST...) */
    nvmlReturn_t rc = dev_enter("nvmlDeviceGetUUID", parent);
    if (rc != NVML_SUCCESS) return fail(rc);
    char field[64];
    snprintf(field, sizeof(field), "mig.%d.uuid", slot);
    return done(copy_str(gpu_str(parent, field), uuid, length));
  }
  DEV_BEGIN("nvmlDeviceGetUUID");
  return done(copy_str(gpu_str(gi, "uuid"), uuid, length));
}

EXPORT nvmlReturn_t nvmlDeviceGetSerial(nvmlDevice_t device, char *serial, unsigned int length) {
  DEV_BEGIN("nvmlDeviceGetSerial");
  return done(copy_str(gpu_str(gi, "serial"), serial, length));
}

EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci) {
  DEV_BEGIN("nvmlDeviceGetPciInfo_v3");
  const char *busId = gpu_str(gi, "pci.bus_id");
  if (!busId) return done(NVML_ERROR_NOT_SUPPORTED);
  if (!pci) return done(NVML_ERROR_INVALID_ARGUMENT);
  unsigned int domain = 0, bus = 0, dev = 0, fn = 0;
  if (sscanf(busId, "%x:%x:%x.%x", &domain, &bus, &dev, &fn) != 4) return done(NVML_ERROR_UNKNOWN);
  memset(pci, 0, sizeof(*pci));
  pci->domain = domain; pci->bus = bus; pci->device = dev;
  gpu_u32(gi, "pci.device_id", &pci->pciDeviceId);
  gpu_u32(gi, "pci.subsystem_id", &pci->pciSubSystemId);
  snprintf(pci->busIdLegacy, sizeof(pci->busIdLegacy), "%04X:%02X:%02X.%X", domain & 0xFFFF, bus, dev, fn);
  snprintf(pci->busId, sizeof(pci->busId), "%08X:%02X:%02X.%X", domain, bus, dev, fn);
  return done(NVML_SUCCESS);
}

/* ---- memory ---- */

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
  DEV_BEGIN("nvmlDeviceGetMemoryInfo");
  unsigned long long total, used, reserved = 0;
  if (!gpu_u64(gi, "memory.total", &total) || !gpu_u64(gi, "memory.used", &used)) return done(NVML_ERROR_NOT_SUPPORTED);
  if (!memory) return done(NVML_ERROR_INVALID_ARGUMENT);
  gpu_u64(gi, "memory.reserved", &reserved);
  /* v1 folds the driver reservation into "used" */
  memory->total = total;
  memory->used = used + reserved;
  memory->free = total > used + reserved ? total - used - reserved : 0;
  return done(NVML_SUCCESS);
}

#ifndef GPUDIAG_FAKE_NO_MEMORY_V2
EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
  DEV_BEGIN("nvmlDeviceGetMemoryInfo_v2");
  if (!memory) return done(NVML_ERROR_INVALID_ARGUMENT);
  if (memory->version != MEMORY_V2_VERSION) return done(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
  unsigned long long total, used, reserved = 0;
  if (!gpu_u64(gi, "memory.total", &total) || !gpu_u64(gi, "memory.used", &used)) return done(NVML_ERROR_NOT_SUPPORTED);
  gpu_u64(gi, "memory.reserved", &reserved);
  memory->total = total;
  memory->reserved = reserved;
  memory->used = used;
  memory->free = total > used + reserved ? total - used - reserved : 0;
  return done(NVML_SUCCESS);
}
#endif

/* ---- thermal / power / utilization / clocks ---- */

static nvmlReturn_t u32_field(int gi, const char *field, unsigned int *out) {
  if (!out) return NVML_ERROR_INVALID_ARGUMENT;
  return gpu_u32(gi, field, out) ? NVML_SUCCESS : NVML_ERROR_NOT_SUPPORTED;
}

static nvmlReturn_t int_field(int gi, const char *field, int *out) {
  unsigned int v;
  if (!out) return NVML_ERROR_INVALID_ARGUMENT;
  if (!gpu_u32(gi, field, &v)) return NVML_ERROR_NOT_SUPPORTED;
  *out = (int)v;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, int sensorType, unsigned int *temp) {
  DEV_BEGIN("nvmlDeviceGetTemperature");
  if (sensorType != 0) return done(NVML_ERROR_INVALID_ARGUMENT);
  return done(u32_field(gi, "temperature", temp));
}

#ifdef GPUDIAG_FAKE_TEMPERATURE_V
/* the replacement of the deprecated nvmlDeviceGetTemperature (CUDA 12.8 headers) */
EXPORT nvmlReturn_t nvmlDeviceGetTemperatureV(nvmlDevice_t device, nvmlTemperature_v1_t *temperature) {
  DEV_BEGIN("nvmlDeviceGetTemperatureV");
  if (!temperature) return done(NVML_ERROR_INVALID_ARGUMENT);
  if (temperature->version != TEMPERATURE_V1_VERSION) return done(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
  if (temperature->sensorType != 0) return done(NVML_ERROR_INVALID_ARGUMENT);
  unsigned int t;
  if (!gpu_u32(gi, "temperature", &t)) return done(NVML_ERROR_NOT_SUPPORTED);
  temperature->temperature = (int)t;
  return done(NVML_SUCCESS);
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetTemperatureThreshold(nvmlDevice_t device, int thresholdType, unsigned int *temp) {
  DEV_BEGIN("nvmlDeviceGetTemperatureThreshold");
  static const char *const names[] = { "temp.shutdown", "temp.slowdown", "temp.mem_max", "temp.gpu_max" };
  if (thresholdType < 0 || thresholdType > 3) return done(NVML_ERROR_NOT_SUPPORTED);
  return done(u32_field(gi, names[thresholdType], temp));
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power) {
  DEV_BEGIN("nvmlDeviceGetPowerUsage");
  return done(u32_field(gi, "power.usage_mw", power));
}

EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int *limit) {
  DEV_BEGIN("nvmlDeviceGetEnforcedPowerLimit");
  return done(u32_field(gi, "power.limit_mw", limit));
}

EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization) {
  DEV_BEGIN("nvmlDeviceGetUtilizationRates");
  if (!utilization) return done(NVML_ERROR_INVALID_ARGUMENT);
  unsigned int g, m;
  if (!gpu_u32(gi, "util.gpu", &g) || !gpu_u32(gi, "util.memory", &m)) return done(NVML_ERROR_NOT_SUPPORTED);
  utilization->gpu = g; utilization->memory = m;
  return done(NVML_SUCCESS);
}

static const char *const clock_names[] = { "graphics", "sm", "mem", "video" };

EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, int type, unsigned int *clock) {
  DEV_BEGIN("nvmlDeviceGetClockInfo");
  if (type < 0 || type > 3) return done(NVML_ERROR_INVALID_ARGUMENT);
  char field[64];
  snprintf(field, sizeof(field), "clock.%s", clock_names[type]);
  return done(u32_field(gi, field, clock));
}

EXPORT nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t device, int type, unsigned int *clock) {
  DEV_BEGIN("nvmlDeviceGetMaxClockInfo");
  if (type < 0 || type > 3) return done(NVML_ERROR_INVALID_ARGUMENT);
  char field[64];
  snprintf(field, sizeof(field), "max_clock.%s", clock_names[type]);
  return done(u32_field(gi, field, clock));
}

static nvmlReturn_t clock_reasons(const char *fn, nvmlDevice_t device, unsigned long long *reasons) {
  DEV_BEGIN(fn);
  if (!reasons) return done(NVML_ERROR_INVALID_ARGUMENT);
  return done(gpu_u64(gi, "clock_event_reasons", reasons) ? NVML_SUCCESS : NVML_ERROR_NOT_SUPPORTED);
}

#ifndef GPUDIAG_FAKE_NO_CLOCKS_EVENT_REASONS
EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t device, unsigned long long *reasons) {
  return clock_reasons("nvmlDeviceGetCurrentClocksEventReasons", device, reasons);
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t device, unsigned long long *reasons) {
  return clock_reasons("nvmlDeviceGetCurrentClocksThrottleReasons", device, reasons);
}

/* ---- ECC, retired pages, remapped rows ---- */

static int ecc_enabled(int gi) {
  unsigned int on = 0;
  return gpu_u32(gi, "ecc.current", &on) && on == 1;
}

EXPORT nvmlReturn_t nvmlDeviceGetEccMode(nvmlDevice_t device, int *current, int *pending) {
  DEV_BEGIN("nvmlDeviceGetEccMode");
  if (!current || !pending) return done(NVML_ERROR_INVALID_ARGUMENT);
  unsigned int c, p;
  if (!gpu_u32(gi, "ecc.current", &c)) return done(NVML_ERROR_NOT_SUPPORTED);
  if (!gpu_u32(gi, "ecc.pending", &p)) p = c;
  *current = (int)c; *pending = (int)p;
  return done(NVML_SUCCESS);
}

static nvmlReturn_t ecc_total(int gi, int errorType, int counterType, unsigned long long *count) {
  if (!count || errorType < 0 || errorType > 1 || counterType < 0 || counterType > 1) return NVML_ERROR_INVALID_ARGUMENT;
  if (!ecc_enabled(gi)) return NVML_ERROR_NOT_SUPPORTED;
  char field[64];
  snprintf(field, sizeof(field), "ecc.%s.%s", errorType ? "uncorrected" : "corrected", counterType ? "aggregate" : "volatile");
  if (!gpu_u64(gi, field, count)) *count = 0;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, int errorType, int counterType, unsigned long long *eccCounts) {
  DEV_BEGIN("nvmlDeviceGetTotalEccErrors");
  return done(ecc_total(gi, errorType, counterType, eccCounts));
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryErrorCounter(nvmlDevice_t device, int errorType, int counterType, int locationType, unsigned long long *count) {
  DEV_BEGIN("nvmlDeviceGetMemoryErrorCounter");
  if (locationType < 0 || locationType > 7) return done(NVML_ERROR_INVALID_ARGUMENT);
  nvmlReturn_t rc = ecc_total(gi, errorType, counterType, count);
  /* every error is attributed to device memory (DRAM = 2) */
  if (rc == NVML_SUCCESS && locationType != 2) *count = 0;
  return done(rc);
}

EXPORT nvmlReturn_t nvmlDeviceGetRetiredPages(nvmlDevice_t device, int cause, unsigned int *pageCount, unsigned long long *addresses) {
  DEV_BEGIN("nvmlDeviceGetRetiredPages");
  if (!pageCount || cause < 0 || cause > 1) return done(NVML_ERROR_INVALID_ARGUMENT);
  unsigned int n;
  if (!gpu_u32(gi, cause ? "retired.dbe" : "retired.sbe", &n)) return done(NVML_ERROR_NOT_SUPPORTED);
  unsigned int capacity = *pageCount;
  *pageCount = n;
  if (capacity < n) return done(NVML_ERROR_INSUFFICIENT_SIZE);
  for (unsigned int i = 0; addresses && i < n; i++) addresses[i] = 0x1000ull * (i + 1) + (unsigned)cause;
  return done(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetRetiredPagesPendingStatus(nvmlDevice_t device, int *isPending) {
  DEV_BEGIN("nvmlDeviceGetRetiredPagesPendingStatus");
  return done(int_field(gi, "retired.pending", isPending));
}

EXPORT nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t device, unsigned int *corrRows, unsigned int *uncRows, unsigned int *isPending, unsigned int *failureOccurred) {
  DEV_BEGIN("nvmlDeviceGetRemappedRows");
  if (!corrRows || !uncRows || !isPending || !failureOccurred) return done(NVML_ERROR_INVALID_ARGUMENT);
  if (!gpu_u32(gi, "remap.corrected", corrRows)) return done(NVML_ERROR_NOT_SUPPORTED);
  if (!gpu_u32(gi, "remap.uncorrected", uncRows)) *uncRows = 0;
  if (!gpu_u32(gi, "remap.pending", isPending)) *isPending = 0;
  if (!gpu_u32(gi, "remap.failure", failureOccurred)) *failureOccurred = 0;
  return done(NVML_SUCCESS);
}

/* ---- NVLink ---- */

/* SUCCESS for a link the GPU has; a gap in the range (nvlink.<l>.supported=0) is NOT_SUPPORTED */
static nvmlReturn_t nvlink_check(int gi, unsigned int link) {
  unsigned int count = g_state.nvlink_count[gi], supported = 1;
  unsigned long long flag;
  if (count == 0) return NVML_ERROR_NOT_SUPPORTED;
  if (link >= MAX_NVLINKS || link >= count) return NVML_ERROR_INVALID_ARGUMENT;
  if (link_u64(gi, link, "supported", &flag)) supported = (unsigned int)flag;
  return supported ? NVML_SUCCESS : NVML_ERROR_NOT_SUPPORTED;
}

/* NVLink generation of the GPU (5 on Blackwell); 0 when the scenario does not say */
static unsigned int nvlink_generation(int gi) {
  return g_state.nvlink_generation[gi];
}

EXPORT nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t device, unsigned int link, int *isActive) {
  DEV_BEGIN("nvmlDeviceGetNvLinkState");
  nvmlReturn_t rc = nvlink_check(gi, link);
  if (rc != NVML_SUCCESS) return done(rc);
  if (!isActive) return done(NVML_ERROR_INVALID_ARGUMENT);
  unsigned long long active = 1;
  link_u64(gi, link, "active", &active);
  *isActive = (int)active;
  return done(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetNvLinkErrorCounter(nvmlDevice_t device, unsigned int link, int counter, unsigned long long *counterValue) {
  DEV_BEGIN("nvmlDeviceGetNvLinkErrorCounter");
  static const char *const names[] = { "replay", "recovery", "crc_flit", "crc_data", "ecc_data" };
  nvmlReturn_t rc = nvlink_check(gi, link);
  if (rc != NVML_SUCCESS) return done(rc);
  if (!counterValue || counter < 0 || counter > 4) return done(NVML_ERROR_INVALID_ARGUMENT);
  /* NVLink5 has no DL replay/recovery/CRC counters: its errors are field values */
  if (nvlink_generation(gi) >= 5) return done(NVML_ERROR_NOT_SUPPORTED);
  if (!link_u64(gi, link, names[counter], counterValue)) *counterValue = 0;
  return done(NVML_SUCCESS);
}

/* ---- PCIe ---- */

EXPORT nvmlReturn_t nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t device, unsigned int *currLinkGen) {
  DEV_BEGIN("nvmlDeviceGetCurrPcieLinkGeneration");
  return done(u32_field(gi, "pcie.gen", currLinkGen));
}

EXPORT nvmlReturn_t nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t device, unsigned int *currLinkWidth) {
  DEV_BEGIN("nvmlDeviceGetCurrPcieLinkWidth");
  return done(u32_field(gi, "pcie.width", currLinkWidth));
}

EXPORT nvmlReturn_t nvmlDeviceGetMaxPcieLinkGeneration(nvmlDevice_t device, unsigned int *maxLinkGen) {
  DEV_BEGIN("nvmlDeviceGetMaxPcieLinkGeneration");
  return done(u32_field(gi, "pcie.max_gen", maxLinkGen));
}

EXPORT nvmlReturn_t nvmlDeviceGetMaxPcieLinkWidth(nvmlDevice_t device, unsigned int *maxLinkWidth) {
  DEV_BEGIN("nvmlDeviceGetMaxPcieLinkWidth");
  return done(u32_field(gi, "pcie.max_width", maxLinkWidth));
}

EXPORT nvmlReturn_t nvmlDeviceGetPcieReplayCounter(nvmlDevice_t device, unsigned int *value) {
  DEV_BEGIN("nvmlDeviceGetPcieReplayCounter");
  return done(u32_field(gi, "pcie.replay", value));
}

EXPORT nvmlReturn_t nvmlDeviceGetPcieThroughput(nvmlDevice_t device, int counter, unsigned int *value) {
  DEV_BEGIN("nvmlDeviceGetPcieThroughput");
  if (counter < 0 || counter > 1) return done(NVML_ERROR_INVALID_ARGUMENT);
  return done(u32_field(gi, counter ? "pcie.rx_kbps" : "pcie.tx_kbps", value));
}

/* ---- processes, modes ---- */

/*
 * The size-then-fetch protocol shared by the three process calls; `stride` is the record size
 * this call writes (v1 16, v2 24, v3 the era's: 32 on 535.43-535.86, or process_record_bytes).
 */
static nvmlReturn_t running_processes(const char *fn, nvmlDevice_t device, unsigned int *infoCount, void *infos, size_t stride) {
  DEV_BEGIN(fn);
  if (!infoCount) return done(NVML_ERROR_INVALID_ARGUMENT);
  const char *list = gpu_str(gi, "processes");
  if (!list) return done(NVML_ERROR_NOT_SUPPORTED);
  unsigned int n = 0;
  for (const char *p = list; *p; p++) if (*p == ':') n++;
  unsigned int capacity = *infoCount;
  *infoCount = n;
  if (capacity < n) return done(NVML_ERROR_INSUFFICIENT_SIZE);
  if (n > 0 && !infos) return done(NVML_ERROR_INVALID_ARGUMENT);
  const char *p = list;
  for (unsigned int i = 0; i < n; i++) {
    char *end;
    unsigned long pid = strtoul(p, &end, 10);
    unsigned long long mem = (*end == ':') ? strtoull(end + 1, &end, 10) : 0;
    nvmlProcessInfo_cc_t record = { (unsigned int)pid, mem, NO_INSTANCE, NO_INSTANCE, 0 };
    memcpy((char *)infos + i * stride, &record, stride);
    p = (*end == ',') ? end + 1 : end;
  }
  return done(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device, unsigned int *infoCount, nvmlProcessInfo_v1_t *infos) {
  return running_processes("nvmlDeviceGetComputeRunningProcesses", device, infoCount, infos, sizeof(nvmlProcessInfo_v1_t));
}

EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int *infoCount, nvmlProcessInfo_t *infos) {
  return running_processes("nvmlDeviceGetComputeRunningProcesses_v2", device, infoCount, infos, sizeof(nvmlProcessInfo_t));
}

#ifndef GPUDIAG_FAKE_NO_PROCESSES_V3
EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *infoCount, void *infos) {
  pthread_mutex_lock(&g_mu);
  maybe_reload();
  long bytes = global_num("process_record_bytes", GPUDIAG_FAKE_PROCESS_V3_BYTES);
  pthread_mutex_unlock(&g_mu);
  if (bytes != 16 && bytes != 24 && bytes != 32) bytes = GPUDIAG_FAKE_PROCESS_V3_BYTES;
  return running_processes("nvmlDeviceGetComputeRunningProcesses_v3", device, infoCount, infos, (size_t)bytes);
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *currentMode, unsigned int *pendingMode) {
  DEV_BEGIN("nvmlDeviceGetMigMode");
  if (!currentMode || !pendingMode) return done(NVML_ERROR_INVALID_ARGUMENT);
  if (!gpu_u32(gi, "mig.current", currentMode)) return done(NVML_ERROR_NOT_SUPPORTED);
  if (!gpu_u32(gi, "mig.pending", pendingMode)) *pendingMode = *currentMode;
  return done(NVML_SUCCESS);
}

/* 0 when MIG is off (nvml.h); the scenario's mig.max (default 7) when it is on. */
EXPORT nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count) {
  DEV_BEGIN("nvmlDeviceGetMaxMigDeviceCount");
  if (!count) return done(NVML_ERROR_INVALID_ARGUMENT);
  unsigned int current = 0;
  if (!gpu_u32(gi, "mig.current", &current)) return done(NVML_ERROR_NOT_SUPPORTED);
  unsigned int max = 7;
  gpu_u32(gi, "mig.max", &max);
  *count = current ? (max > MAX_MIG ? MAX_MIG : max) : 0;
  return done(NVML_SUCCESS);
}

/* NOT_FOUND for a slot without a MIG device, as nvml.h documents. */
EXPORT nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index, nvmlDevice_t *migDevice) {
  DEV_BEGIN("nvmlDeviceGetMigDeviceHandleByIndex");
  if (!migDevice || index >= MAX_MIG) return done(NVML_ERROR_INVALID_ARGUMENT);
  unsigned int current = 0;
  if (!gpu_u32(gi, "mig.current", &current)) return done(NVML_ERROR_NOT_SUPPORTED);
  char field[64];
  snprintf(field, sizeof(field), "mig.%u.uuid", index);
  if (!current || !gpu_str(gi, field)) return done(NVML_ERROR_NOT_FOUND);
  g_mig[gi][index].index = gi;
  *migDevice = &g_mig[gi][index];
  return done(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetPerformanceState(nvmlDevice_t device, int *pState) {
  DEV_BEGIN("nvmlDeviceGetPerformanceState");
  return done(int_field(gi, "pstate", pState));
}

EXPORT nvmlReturn_t nvmlDeviceGetFanSpeed(nvmlDevice_t device, unsigned int *speed) {
  DEV_BEGIN("nvmlDeviceGetFanSpeed");
  return done(u32_field(gi, "fan", speed));
}

EXPORT nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t device, int *mode) {
  DEV_BEGIN("nvmlDeviceGetPersistenceMode");
  return done(int_field(gi, "persistence", mode));
}

EXPORT nvmlReturn_t nvmlDeviceGetComputeMode(nvmlDevice_t device, int *mode) {
  DEV_BEGIN("nvmlDeviceGetComputeMode");
  return done(int_field(gi, "compute_mode", mode));
}

/* ---- inventory, limits, fabric (nvml.h API 13 layouts) ---- */

typedef struct {
  unsigned char clusterUuid[16];
  nvmlReturn_t status;
  unsigned int cliqueId;
  unsigned char state;
} nvmlGpuFabricInfo_t;
typedef struct {
  unsigned int version;
  unsigned char clusterUuid[16];
  nvmlReturn_t status;
  unsigned int cliqueId;
  unsigned char state;
  unsigned int healthMask;
  unsigned char healthSummary;
} nvmlGpuFabricInfo_v3_t;
typedef struct { unsigned long long bar1Total, bar1Free, bar1Used; } nvmlBAR1Memory_t;
_Static_assert(sizeof(nvmlGpuFabricInfo_t) == 28, "nvmlGpuFabricInfo_t layout");
_Static_assert(sizeof(nvmlGpuFabricInfo_v3_t) == 40, "nvmlGpuFabricInfo_v3_t layout");
_Static_assert(sizeof(nvmlBAR1Memory_t) == 24, "nvmlBAR1Memory_t layout");
/* NVML_STRUCT_VERSION(GpuFabricInfo, 2) and (.., 3): the v2 struct is 36 bytes, v3 40 */
#define FABRIC_INFO_V2_VERSION 0x02000024u
#define FABRIC_INFO_V3_VERSION 0x03000028u
#define NVML_ERROR_CORRUPTED_INFOROM 14

#if !defined(GPUDIAG_FAKE_NO_FABRIC_INFO) || defined(GPUDIAG_FAKE_FABRIC_INFO_V)
/* gpu.<i>.fabric.*: state (absent: NOT_SUPPORTED), status, clique_id, cluster_uuid (32 hex), health_mask, health_summary */
static nvmlReturn_t fabric_read(int gi, unsigned char uuid[16], nvmlReturn_t *status, unsigned int *clique, unsigned char *state, unsigned int *mask, unsigned char *summary) {
  unsigned int v = 0;
  if (!gpu_u32(gi, "fabric.state", &v)) return NVML_ERROR_NOT_SUPPORTED;
  *state = (unsigned char)v;
  v = 0; gpu_u32(gi, "fabric.status", &v); *status = (nvmlReturn_t)v;
  v = 0; gpu_u32(gi, "fabric.clique_id", &v); *clique = v;
  v = 0; gpu_u32(gi, "fabric.health_mask", &v); *mask = v;
  v = 0; gpu_u32(gi, "fabric.health_summary", &v); *summary = (unsigned char)v;
  memset(uuid, 0, 16);
  const char *hex = gpu_str(gi, "fabric.cluster_uuid");
  for (int i = 0; hex && i < 16 && hex[2 * i] && hex[2 * i + 1]; i++) {
    unsigned int byte = 0;
    if (sscanf(hex + 2 * i, "%2x", &byte) != 1) break;
    uuid[i] = (unsigned char)byte;
  }
  return NVML_SUCCESS;
}
#endif

#ifndef GPUDIAG_FAKE_NO_FABRIC_INFO
EXPORT nvmlReturn_t nvmlDeviceGetGpuFabricInfo(nvmlDevice_t device, nvmlGpuFabricInfo_t *info) {
  DEV_BEGIN("nvmlDeviceGetGpuFabricInfo");
  if (!info) return done(NVML_ERROR_INVALID_ARGUMENT);
  unsigned int mask; unsigned char summary;
  return done(fabric_read(gi, info->clusterUuid, &info->status, &info->cliqueId, &info->state, &mask, &summary));
}
#endif

#ifdef GPUDIAG_FAKE_FABRIC_INFO_V
EXPORT nvmlReturn_t nvmlDeviceGetGpuFabricInfoV(nvmlDevice_t device, nvmlGpuFabricInfo_v3_t *info) {
  DEV_BEGIN("nvmlDeviceGetGpuFabricInfoV");
  if (!info) return done(NVML_ERROR_INVALID_ARGUMENT);
#ifdef GPUDIAG_FAKE_FABRIC_INFO_V3
  int v3 = info->version == FABRIC_INFO_V3_VERSION;
#else
  int v3 = 0;
#endif
  if (!v3 && info->version != FABRIC_INFO_V2_VERSION) return done(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
  unsigned char summary = 0;
  nvmlReturn_t rc = fabric_read(gi, info->clusterUuid, &info->status, &info->cliqueId, &info->state, &info->healthMask, &summary);
  if (rc == NVML_SUCCESS && v3) info->healthSummary = summary;
  return done(rc);
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetVbiosVersion(nvmlDevice_t device, char *version, unsigned int length) {
  DEV_BEGIN("nvmlDeviceGetVbiosVersion");
  return done(copy_str(gpu_str(gi, "vbios"), version, length));
}

EXPORT nvmlReturn_t nvmlDeviceGetInforomImageVersion(nvmlDevice_t device, char *version, unsigned int length) {
  DEV_BEGIN("nvmlDeviceGetInforomImageVersion");
  return done(copy_str(gpu_str(gi, "inforom.image"), version, length));
}

EXPORT nvmlReturn_t nvmlDeviceGetInforomVersion(nvmlDevice_t device, int object, char *version, unsigned int length) {
  DEV_BEGIN("nvmlDeviceGetInforomVersion");
  static const char *const names[] = { "inforom.oem", "inforom.ecc", "inforom.power" };
  if (object < 0 || object > 2) return done(NVML_ERROR_INVALID_ARGUMENT);
  return done(copy_str(gpu_str(gi, names[object]), version, length));
}

/* CORRUPTED_INFOROM with gpu.<i>.inforom.corrupted=1; NOT_SUPPORTED without an InfoROM image */
EXPORT nvmlReturn_t nvmlDeviceValidateInforom(nvmlDevice_t device) {
  DEV_BEGIN("nvmlDeviceValidateInforom");
  unsigned int corrupted = 0;
  gpu_u32(gi, "inforom.corrupted", &corrupted);
  if (corrupted) return done(NVML_ERROR_CORRUPTED_INFOROM);
  return done(gpu_str(gi, "inforom.image") ? NVML_SUCCESS : NVML_ERROR_NOT_SUPPORTED);
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementLimitConstraints(nvmlDevice_t device, unsigned int *minLimit, unsigned int *maxLimit) {
  DEV_BEGIN("nvmlDeviceGetPowerManagementLimitConstraints");
  if (!minLimit || !maxLimit) return done(NVML_ERROR_INVALID_ARGUMENT);
  if (!gpu_u32(gi, "power.min_limit_mw", minLimit) || !gpu_u32(gi, "power.max_limit_mw", maxLimit)) return done(NVML_ERROR_NOT_SUPPORTED);
  return done(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementDefaultLimit(nvmlDevice_t device, unsigned int *defaultLimit) {
  DEV_BEGIN("nvmlDeviceGetPowerManagementDefaultLimit");
  return done(u32_field(gi, "power.default_limit_mw", defaultLimit));
}

EXPORT nvmlReturn_t nvmlDeviceGetBAR1MemoryInfo(nvmlDevice_t device, nvmlBAR1Memory_t *bar1Memory) {
  DEV_BEGIN("nvmlDeviceGetBAR1MemoryInfo");
  if (!bar1Memory) return done(NVML_ERROR_INVALID_ARGUMENT);
  unsigned long long total = 0, used = 0;
  if (!gpu_u64(gi, "bar1.total", &total)) return done(NVML_ERROR_NOT_SUPPORTED);
  gpu_u64(gi, "bar1.used", &used);
  bar1Memory->bar1Total = total;
  bar1Memory->bar1Used = used;
  bar1Memory->bar1Free = total > used ? total - used : 0;
  return done(NVML_SUCCESS);
}

/* Field ids of the device-info batch (nvml.h NVML_FI_DEV_*): u64 values from gpu.<i>.<key>, NOT_SUPPORTED when absent. */
static void device_info_field(int gi, nvmlFieldValue_t *v) {
  const char *key = NULL;
  int type = 3; /* NVML_VALUE_TYPE_UNSIGNED_LONG_LONG */
  switch (v->fieldId) {
    case 74: key = "violation.power_ns"; break;            /* PERF_POLICY_POWER */
    case 75: key = "violation.thermal_ns"; break;          /* PERF_POLICY_THERMAL */
    case 82: key = "memory_temp"; type = 1; break;         /* MEMORY_TEMP (unsigned int) */
    case 83: key = "energy_mj"; break;                     /* TOTAL_ENERGY_CONSUMPTION */
    case 95: key = "pcie.replay_rollover"; type = 1; break; /* PCIE_REPLAY_ROLLOVER_COUNTER */
#ifndef GPUDIAG_FAKE_NO_PCIE_COUNTERS
    case 173: key = "pcie.correctable"; break;             /* PCIE_COUNT_CORRECTABLE_ERRORS */
#endif
    default: return;
  }
  unsigned long long x = 0;
  if (!gpu_u64(gi, key, &x)) return;
  v->valueType = type;
  if (type == 1) v->value.uiVal = (unsigned int)x;
  else v->value.ullVal = x;
  v->nvmlReturn = NVML_SUCCESS;
}

/* ---- field values ---- */

enum {
  FI_NVLINK_RECOVERY_SUCCESSFUL = 213, FI_NVLINK_RECOVERY_FAILED = 214, FI_NVLINK_RECOVERY_EVENTS = 215,
  FI_NVLINK_EFFECTIVE_ERRORS = 219, FI_NVLINK_SYMBOL_ERRORS = 221, FI_GPU_RECOVERY_ACTION = 230
};
enum { VALUE_TYPE_UNSIGNED_INT = 1, VALUE_TYPE_UNSIGNED_LONG_LONG = 3 };

#ifdef GPUDIAG_FAKE_NVLINK5_FIELDS
/* An NVLink5 error counter of link `scopeId` (missing keys read 0); NOT_SUPPORTED before NVLink5. */
static nvmlReturn_t nvlink5_counter(int gi, unsigned int link, unsigned int fieldId, unsigned long long *out) {
  if (nvlink_generation(gi) < 5) return NVML_ERROR_NOT_SUPPORTED;
  nvmlReturn_t rc = nvlink_check(gi, link);
  if (rc != NVML_SUCCESS) return rc;
  const char *name = fieldId == FI_NVLINK_RECOVERY_SUCCESSFUL ? "recovery_successful"
                     : fieldId == FI_NVLINK_RECOVERY_FAILED   ? "recovery_failed"
                     : fieldId == FI_NVLINK_EFFECTIVE_ERRORS  ? "effective_errors"
                     : fieldId == FI_NVLINK_SYMBOL_ERRORS     ? "symbol_errors"
                                                              : NULL;
  unsigned long long a = 0, b = 0;
  if (name == NULL) { /* LINK_RECOVERY_EVENTS: successful + failed */
    link_u64(gi, link, "recovery_successful", &a);
    link_u64(gi, link, "recovery_failed", &b);
    *out = a + b;
    return NVML_SUCCESS;
  }
  if (!link_u64(gi, link, name, out)) *out = 0;
  return NVML_SUCCESS;
}
#endif

/*
 * The NVLink DL error counters as field values, before NVLink5: NVML_FI_DEV_NVLINK_ERROR_DL_REPLAY /
 * _RECOVERY / _CRC (161-163, scopeId = link) and the per-link ids of CRC data (39-44: L0-L5,
 * 102-107: L6-L11) and ECC data (148-159: L0-L11). They read what nvmlDeviceGetNvLinkErrorCounter
 * reads. Returns 0 for an id that is none of these; NVLink5 has none of them (Blackwell).
 */
static int nvlink_dl_field(int gi, nvmlFieldValue_t *v) {
  unsigned int link;
  const char *name;
  unsigned int id = v->fieldId;
#ifndef GPUDIAG_FAKE_NO_NVLINK_DL_FIELDS
  if (id == 165) { /* NVLINK_GET_STATE: NVML_NVLINK_STATE_ACTIVE 1 / INACTIVE 0, on every NVLink generation */
    nvmlReturn_t rc = nvlink_check(gi, v->scopeId);
    v->nvmlReturn = rc;
    if (rc != NVML_SUCCESS) return 1;
    unsigned long long active = 1;
    link_u64(gi, v->scopeId, "active", &active);
    v->valueType = 1; /* NVML_VALUE_TYPE_UNSIGNED_INT */
    v->value.uiVal = active ? 1u : 0u;
    return 1;
  }
  if (id >= 161 && id <= 163) {
    static const char *const scoped[] = { "replay", "recovery", "crc_flit" };
    link = v->scopeId;
    name = scoped[id - 161];
  } else
#endif
  if (id >= 39 && id <= 44) { link = id - 39; name = "crc_data"; }
  else if (id >= 102 && id <= 107) { link = id - 102 + 6; name = "crc_data"; }
  else if (id >= 148 && id <= 159) { link = id - 148; name = "ecc_data"; }
  else return 0;
  nvmlReturn_t rc = nvlink_check(gi, link);
  if (rc == NVML_SUCCESS && nvlink_generation(gi) >= 5) rc = NVML_ERROR_NOT_SUPPORTED;
  v->nvmlReturn = rc;
  if (rc != NVML_SUCCESS) return 1;
  unsigned long long x = 0;
  link_u64(gi, link, name, &x);
  v->valueType = 3; /* NVML_VALUE_TYPE_UNSIGNED_LONG_LONG */
  v->value.ullVal = x;
  return 1;
}

/* Fills one requested field; ids this era does not know are NOT_SUPPORTED, like a field the GPU lacks. */
static void field_value(int gi, nvmlFieldValue_t *v) {
  unsigned long long x = 0;
  v->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
  if (nvlink_dl_field(gi, v)) return;
  switch (v->fieldId) {
#ifdef GPUDIAG_FAKE_RECOVERY_ACTION
    case FI_GPU_RECOVERY_ACTION:
      if (gpu_u64(gi, "recovery_action", &x)) {
        v->valueType = VALUE_TYPE_UNSIGNED_INT;
        v->value.uiVal = (unsigned int)x;
        v->nvmlReturn = NVML_SUCCESS;
      }
      break;
#endif
#ifdef GPUDIAG_FAKE_NVLINK5_FIELDS
    case FI_NVLINK_RECOVERY_SUCCESSFUL:
    case FI_NVLINK_RECOVERY_FAILED:
    case FI_NVLINK_RECOVERY_EVENTS:
    case FI_NVLINK_EFFECTIVE_ERRORS:
    case FI_NVLINK_SYMBOL_ERRORS:
      v->nvmlReturn = nvlink5_counter(gi, v->scopeId, v->fieldId, &x);
      if (v->nvmlReturn == NVML_SUCCESS) {
        v->valueType = VALUE_TYPE_UNSIGNED_LONG_LONG;
        v->value.ullVal = x;
      }
      break;
#endif
    default:
      (void)x;
      device_info_field(gi, v);
      break;
  }
}

EXPORT nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t device, int valuesCount, nvmlFieldValue_t *values) {
  DEV_BEGIN("nvmlDeviceGetFieldValues");
  if (valuesCount < 0 || (valuesCount > 0 && !values)) return done(NVML_ERROR_INVALID_ARGUMENT);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  for (int i = 0; i < valuesCount; i++) {
    values[i].timestamp = (long long)now.tv_sec * 1000000LL + now.tv_nsec / 1000;
    values[i].latencyUsec = 0;
    field_value(gi, &values[i]);
  }
  return done(NVML_SUCCESS);
}

/* ---- events ---- */

/* SingleBitEccErrorStorm 0x200, DramRetirementEvent 0x400, DramRetirementFailure 0x800, NonFatalPoisonError 0x1000, FatalPoisonError 0x2000 (R560) */
#define EVENT_MEMORY_TYPES 0x3E00ull

/* Event types this era's driver knows (the memory events arrived with R560, GpuRecoveryAction with R565). */
static unsigned long long known_events(unsigned long long types) {
#ifndef GPUDIAG_FAKE_MEMORY_EVENTS
  types &= ~EVENT_MEMORY_TYPES;
#endif
#ifdef GPUDIAG_FAKE_RECOVERY_ACTION
  return types;
#else
  return types & ~EVENT_GPU_RECOVERY_ACTION;
#endif
}

static int set_index(nvmlEventSet_t set) {
  if (set < g_sets || set >= g_sets + MAX_EVENT_SETS) return -1;
  return (int)(set - g_sets);
}

EXPORT nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set) {
  SYS_BEGIN("nvmlEventSetCreate");
  if (!set) return done(NVML_ERROR_INVALID_ARGUMENT);
  for (int i = 0; i < MAX_EVENT_SETS; i++) {
    if (!g_sets[i].used) {
      memset(&g_sets[i], 0, sizeof(g_sets[i]));
      g_sets[i].used = 1;
      *set = &g_sets[i];
      return done(NVML_SUCCESS);
    }
  }
  return done(20 /* MEMORY */);
}

EXPORT nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set) {
  pthread_mutex_lock(&g_mu);
  int si = set_index(set);
  nvmlReturn_t rc = (si < 0 || !g_sets[si].used) ? NVML_ERROR_INVALID_ARGUMENT : NVML_SUCCESS;
  if (rc == NVML_SUCCESS) {
    g_sets[si].used = 0;
    for (int i = 0; i < g_sets[si].delivered_count && g_consumed_count < MAX_DELIVERED; i++) g_consumed[g_consumed_count++] = g_sets[si].delivered[i];
  }
  pthread_mutex_unlock(&g_mu);
  return rc;
}

EXPORT nvmlReturn_t nvmlDeviceGetSupportedEventTypes(nvmlDevice_t device, unsigned long long *eventTypes) {
  DEV_BEGIN("nvmlDeviceGetSupportedEventTypes");
  if (!eventTypes) return done(NVML_ERROR_INVALID_ARGUMENT);
  if (!gpu_u64(gi, "supported_events", eventTypes)) return done(NVML_ERROR_NOT_SUPPORTED);
  *eventTypes = known_events(*eventTypes);
  return done(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long eventTypes, nvmlEventSet_t set) {
  DEV_BEGIN("nvmlDeviceRegisterEvents");
  int si = set_index(set);
  if (si < 0 || !g_sets[si].used) return done(NVML_ERROR_INVALID_ARGUMENT);
  unsigned long long supported = 0;
  gpu_u64(gi, "supported_events", &supported);
  supported = known_events(supported);
  if (eventTypes & ~supported) return done(NVML_ERROR_NOT_SUPPORTED);
  g_sets[si].mask[gi] |= eventTypes;
  return done(NVML_SUCCESS);
}

static int delivered(const struct nvmlEventSet_st *s, long id) {
  for (int i = 0; i < s->delivered_count; i++) if (s->delivered[i] == id) return 1;
  for (int i = 0; i < g_consumed_count; i++) if (g_consumed[i] == id) return 1;
  return 0;
}

/* GPU_IS_LOST when a GPU registered in the set fell off the bus (caller holds g_mu). */
static nvmlReturn_t set_health(const struct nvmlEventSet_st *s) {
  char key[64];
  for (int gi = 0; gi < MAX_GPUS; gi++) {
    if (s->mask[gi] == 0) continue;
    if (global_num((snprintf(key, sizeof(key), "gpu.%d.lost", gi), key), 0) != 0) return NVML_ERROR_GPU_IS_LOST;
  }
  return NVML_SUCCESS;
}

/* Finds the lowest-id undelivered event matching the set (caller holds g_mu). */
static int next_event(struct nvmlEventSet_st *s, nvmlEventData_t *data) {
  long best = -1; int best_gpu = 0; unsigned long long best_type = 0, best_data = 0;
  for (int i = 0; i < g_state.count; i++) {
    const entry_t *e = &g_state.entries[i];
    if (strncmp(e->key, "event.", 6) != 0) continue;
    long id = strtol(e->key + 6, NULL, 10);
    int gpu; unsigned long long type, value;
    if (id <= 0 || sscanf(e->value, "%d,%lli,%lli", &gpu, (long long *)&type, (long long *)&value) != 3) continue;
    if (gpu < 0 || gpu >= MAX_GPUS || !(s->mask[gpu] & type) || delivered(s, id)) continue;
    if (best < 0 || id < best) { best = id; best_gpu = gpu; best_type = type; best_data = value; }
  }
  if (best < 0) return 0;
  if (s->delivered_count < MAX_DELIVERED) s->delivered[s->delivered_count++] = best;
  data->device = &g_devices[best_gpu];
  data->eventType = best_type;
  data->eventData = best_data;
  data->gpuInstanceId = NO_INSTANCE;
  data->computeInstanceId = NO_INSTANCE;
  return 1;
}

EXPORT nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeoutms) {
  enter_call();
  int si = set_index(set);
  if (si < 0 || !data) return fail(NVML_ERROR_INVALID_ARGUMENT);
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  pthread_mutex_lock(&g_mu);
  count_call("nvmlEventSetWait_v2");
  pthread_mutex_unlock(&g_mu);
  for (;;) {
    pthread_mutex_lock(&g_mu);
    maybe_reload();
    if (g_refcount == 0) return done(NVML_ERROR_UNINITIALIZED);
    if (!g_sets[si].used) return done(NVML_ERROR_INVALID_ARGUMENT);
    nvmlReturn_t injected = (nvmlReturn_t)global_num("error.nvmlEventSetWait_v2", 0);
    if (injected != NVML_SUCCESS) return done(injected);
    if (next_event(&g_sets[si], data)) return done(NVML_SUCCESS);
    /* pending events (the XID 79) come first; then the lost GPU fails every wait of its set */
    nvmlReturn_t health = set_health(&g_sets[si]);
    if (health != NVML_SUCCESS) return done(health);
    pthread_mutex_unlock(&g_mu);
    clock_gettime(CLOCK_MONOTONIC, &now);
    long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    if (elapsed >= (long)timeoutms) return fail(NVML_ERROR_TIMEOUT);
    long left = (long)timeoutms - elapsed;
    sleep_ms(left < EVENT_POLL_MS ? left : EVENT_POLL_MS);
  }
}

/* ---- test-only hooks (not part of NVML) ---- */

/* Sets the state file for this process (jest's process.env is not the C environment). NULL/"" clears it. */
EXPORT void gpudiagFakeSetStatePath(const char *path) {
  pthread_mutex_lock(&g_mu);
  snprintf(g_override, sizeof(g_override), "%s", path ? path : "");
  if (g_override[0]) switch_path(g_override);
  pthread_mutex_unlock(&g_mu);
}


EXPORT int gpudiagFakeInitCount(void) { return atomic_load(&g_init_count); }
EXPORT int gpudiagFakeShutdownCount(void) { return atomic_load(&g_shutdown_count); }
EXPORT int gpudiagFakeInflightCalls(void) { return atomic_load(&g_inflight); }
EXPORT int gpudiagFakeMaxInflightCalls(void) { return atomic_load(&g_max_inflight); }
/* nvmlShutdown calls that ran while another call was still executing (must stay 0) */
EXPORT int gpudiagFakeShutdownWhileBusyCount(void) { return atomic_load(&g_shutdown_busy); }
EXPORT int gpudiagFakeReloadCount(void) { return atomic_load(&g_reload_count); }
/* calls of one NVML function so far in this process */
EXPORT int gpudiagFakeCallCount(const char *fn) {
  int n = 0;
  pthread_mutex_lock(&g_mu);
  for (int i = 0; fn && i < g_calls_used; i++) if (strcmp(g_calls[i].name, fn) == 0) n = g_calls[i].count;
  pthread_mutex_unlock(&g_mu);
  return n;
}
/* calls of every NVML function so far in this process */
EXPORT int gpudiagFakeTotalCallCount(void) {
  int n = 0;
  pthread_mutex_lock(&g_mu);
  for (int i = 0; i < g_calls_used; i++) n += g_calls[i].count;
  pthread_mutex_unlock(&g_mu);
  return n;
}
/* the driver era this library was built as */
EXPORT const char *gpudiagFakeEra(void) { return GPUDIAG_FAKE_ERA; }
