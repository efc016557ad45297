/*
 * ngx_http_firewall_module.c - the native-C baseline of the nginx request
 * firewall use case: an access-phase handler that rejects requests whose URI
 * starts with "/admin" (403) and counts accepted and rejected requests.
 *
 * The counters live in one shared anonymous page mapped at configuration
 * time, so the master and every worker (forked after) update the same two
 * words with atomic adds - the same work the graft and Lua versions do with
 * their shared maps / dictionaries.
 */
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <sys/mman.h>

#define FW_PREFIX "/admin"

static ngx_atomic_t *fw_counts;     /* [0] accepted, [1] rejected */

static ngx_int_t ngx_http_firewall_handler(ngx_http_request_t *r)
{
    size_t n = sizeof(FW_PREFIX) - 1;
    if (r->uri.len >= n && ngx_strncmp(r->uri.data, FW_PREFIX, n) == 0) {
        ngx_atomic_fetch_add(&fw_counts[1], 1);
        return NGX_HTTP_FORBIDDEN;
    }
    ngx_atomic_fetch_add(&fw_counts[0], 1);
    return NGX_DECLINED;
}

static ngx_int_t ngx_http_firewall_init(ngx_conf_t *cf)
{
    if (fw_counts == NULL) {
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NGX_ERROR;
        fw_counts = p;
    }
    ngx_http_core_main_conf_t *cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    ngx_http_handler_pt *h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL)
        return NGX_ERROR;
    *h = ngx_http_firewall_handler;
    return NGX_OK;
}

static ngx_http_module_t ngx_http_firewall_module_ctx = {
    NULL, ngx_http_firewall_init,   /* preconfiguration, postconfiguration */
    NULL, NULL, NULL, NULL, NULL, NULL,
};

ngx_module_t ngx_http_firewall_module = {
    NGX_MODULE_V1,
    &ngx_http_firewall_module_ctx,
    NULL,                           /* no directives: always on when loaded */
    NGX_HTTP_MODULE,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NGX_MODULE_V1_PADDING
};
