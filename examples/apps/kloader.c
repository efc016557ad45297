/*
 * kloader.c - the kernel side of the comparisons: load a BPF object into the
 * kernel with libbpf, attach every program by its section name (libbpf's
 * auto-attach: raw_tracepoint/sys_enter, uprobe/BINARY:FUNC, ...), print
 * "loaded", and run until SIGINT/SIGTERM. Then print every map whose keys
 * and values are integers as lines "MAP KEY VALUE" (values of 8 bytes are
 * summed over CPUs for per-CPU maps) on stdout.
 *
 * SIGUSR1 prints the same dump at once, followed by a line "--", and goes on
 * (for deltas over a measurement window).
 *
 * With --ringbuf MAP FILE it also drains ring buffer MAP into FILE (each
 * record's bytes, as is) while it runs.
 *
 *   kloader OBJ [--ringbuf MAP FILE]
 *
 * Exit status: 0 ok, 1 load/attach failure (the libbpf message says why).
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop, dump;
static void on_signal(int sig) { (void)sig; stop = 1; }
static void on_usr1(int sig) { (void)sig; dump = 1; }

static int write_record(void *ctx, void *data, size_t len)
{
    fwrite(data, 1, len, (FILE *)ctx);
    return 0;
}

static unsigned long long read_u(const unsigned char *p, unsigned n)
{
    unsigned long long v = 0;
    memcpy(&v, p, n > 8 ? 8 : n);
    return v;
}

/* Print one map's entries; only integer keys (<= 8 bytes) and values. */
static void dump_map(struct bpf_map *m)
{
    unsigned ks = bpf_map__key_size(m), vs = bpf_map__value_size(m);
    enum bpf_map_type t = bpf_map__type(m);
    int percpu = t == BPF_MAP_TYPE_PERCPU_ARRAY || t == BPF_MAP_TYPE_PERCPU_HASH;
    if (ks > 8 || vs > 8 || (t != BPF_MAP_TYPE_ARRAY && t != BPF_MAP_TYPE_HASH && !percpu))
        return;
    int ncpu = percpu ? libbpf_num_possible_cpus() : 1;
    unsigned stride = percpu ? (vs + 7) / 8 * 8 : vs;
    unsigned char key[8], next[8], *val = calloc((size_t)ncpu, stride);
    if (!val)
        return;
    int fd = bpf_map__fd(m);
    void *prev = NULL;
    while (bpf_map_get_next_key(fd, prev, next) == 0) {
        memcpy(key, next, ks);
        prev = key;
        if (bpf_map_lookup_elem(fd, key, val) != 0)
            continue;
        unsigned long long sum = 0;
        for (int c = 0; c < ncpu; c++)
            sum += read_u(val + (size_t)c * stride, vs);
        printf("%s %llu %llu\n", bpf_map__name(m), read_u(key, ks), sum);
    }
    free(val);
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 5) {
        fprintf(stderr, "usage: kloader OBJ [--ringbuf MAP FILE]\n");
        return 2;
    }
    struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
    if (!obj) {
        fprintf(stderr, "kloader: cannot open %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    if (bpf_object__load(obj) != 0) {
        fprintf(stderr, "kloader: the kernel refused %s (see the libbpf log above)\n", argv[1]);
        return 1;
    }
    struct bpf_program *p;
    bpf_object__for_each_program(p, obj) {
        if (!bpf_program__attach(p)) {
            fprintf(stderr, "kloader: cannot attach %s (%s): %s\n", bpf_program__name(p),
                    bpf_program__section_name(p), strerror(errno));
            return 1;
        }
    }
    struct ring_buffer *rb = NULL;
    FILE *out = NULL;
    if (argc == 5) {
        struct bpf_map *m = bpf_object__find_map_by_name(obj, argv[3]);
        out = fopen(argv[4], "wb");
        if (!m || !out || !(rb = ring_buffer__new(bpf_map__fd(m), write_record, out, NULL))) {
            fprintf(stderr, "kloader: ring buffer %s -> %s: %s\n", argv[3], argv[4], strerror(errno));
            return 1;
        }
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGUSR1, on_usr1);
    printf("loaded\n");
    fflush(stdout);
    while (!stop) {
        if (rb)
            ring_buffer__poll(rb, 100);
        else
            usleep(20000);
        if (dump) {
            struct bpf_map *m;
            dump = 0;
            bpf_object__for_each_map(m, obj)
                dump_map(m);
            printf("--\n");
            fflush(stdout);
        }
    }
    if (rb) {
        ring_buffer__consume(rb);
        ring_buffer__free(rb);
        fclose(out);
    }
    struct bpf_map *m;
    bpf_object__for_each_map(m, obj)
        dump_map(m);
    fflush(stdout);
    bpf_object__close(obj);
    return 0;
}
