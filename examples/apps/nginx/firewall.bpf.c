/*
 * firewall.bpf.c - the graft version of the nginx request firewall: reject
 * requests whose URI starts with "/admin" with 403, count accepted and
 * rejected requests in map "fw" (key 0 accepted, 1 rejected), in an
 * unmodified Debian /usr/sbin/nginx.
 *
 * Where: nginx exports its functions (-rdynamic, for dynamic modules), but
 * its phase handlers are static and an override of a phase *checker* cannot
 * finalize the request. So we override an exported function that takes the
 * request and whose return value nginx turns into the response status:
 * ngx_http_discard_request_body(r). The static-file handler calls it once it
 * has found the file and returns its result unless NGX_OK; the content phase
 * then calls ngx_http_finalize_request(r, rc). Making it return 403 (without
 * running it) therefore answers "403 Forbidden" with nginx's own error page.
 * nginx also calls it when it sends an error page - after setting
 * r->err_status - so we decide only while err_status == 0: each request is
 * counted once, and the 403 page itself is not rejected again.
 *
 * Consequences (documented in bench/apps/RESULTS.md): the decision happens
 * in the content phase (after the file was opened), not the access phase
 * as with the native module and Lua; a rejected URL that does not exist gets
 * 404, not 403.
 *
 * OFF_URI_LEN, OFF_URI_DATA, OFF_ERR_STATUS come from nginx-dev's headers
 * (examples/apps/nginx/offsets.c), NGINX is the binary's path.
 */
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define NGX_HTTP_FORBIDDEN 403

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} fw SEC(".maps");

static void count(__u32 k)
{
    __u64 *v = bpf_map_lookup_elem(&fw, &k);
    if (v)
        __sync_fetch_and_add(v, 1);
}

SEC("override/" NGINX ":ngx_http_discard_request_body")
int firewall(struct pt_regs *ctx)
{
    const char *r = (const char *)PT_REGS_PARM1(ctx);
    unsigned long err_status = 0, len = 0;
    const char *data = 0;
    char uri[6] = {};
    if (bpf_probe_read_user(&err_status, sizeof(err_status), r + OFF_ERR_STATUS) < 0 || err_status)
        return 0;
    if (bpf_probe_read_user(&len, sizeof(len), r + OFF_URI_LEN) < 0 ||
        bpf_probe_read_user(&data, sizeof(data), r + OFF_URI_DATA) < 0)
        return 0;
    if (len >= sizeof(uri) && bpf_probe_read_user(uri, sizeof(uri), data) == 0 &&
        uri[0] == '/' && uri[1] == 'a' && uri[2] == 'd' && uri[3] == 'm' && uri[4] == 'i' &&
        uri[5] == 'n') {
        count(1);
        bpf_override_return(ctx, NGX_HTTP_FORBIDDEN);
        return 0;
    }
    count(0);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
