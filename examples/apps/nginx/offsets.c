/* offsets.c - prints the ngx_http_request_t field offsets the graft firewall
 * extension needs (and the struct's size, for nginx.eim.yaml), as clang -D
 * flags. Compiled against Debian's nginx-dev
 * headers after its configure step (for objs/ngx_auto_config.h), so the
 * offsets are those of the installed /usr/sbin/nginx (same version, same
 * --with-compat flags). */
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <stddef.h>
#include <stdio.h>

int main(void)
{
    printf("-DOFF_URI_LEN=%zu -DOFF_URI_DATA=%zu -DOFF_ERR_STATUS=%zu -DSIZE_REQUEST=%zu\n",
           offsetof(ngx_http_request_t, uri) + offsetof(ngx_str_t, len),
           offsetof(ngx_http_request_t, uri) + offsetof(ngx_str_t, data),
           offsetof(ngx_http_request_t, err_status), sizeof(ngx_http_request_t));
    return 0;
}
