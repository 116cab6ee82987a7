"""Configuration files for the proxies under test in scripts/bench: nginx (1 worker) and strangler."""

PATH = "/webhooks/github"
TOPIC = "webhooks.bench"
SECRET_ENV = "BENCH_GH_SECRET"
# 32 random-looking bytes; strangler warns about secrets under 16 bytes.
SECRET = "bench-secret-7c1f0a9e4b2d6e8f3a5c"
# The body every request carries: the consumer kit's sample service reads `amount` (< 100: accepted).
BODY = '{"action":"created","amount":42,"order":{"sku":"bench-1","qty":1}}'


def nginx_conf(prefix, port, upstream, sink=None):
    """nginx `proxy_pass` with upstream keepalive, one worker; with `sink`, also `mirror` to it.

    The mirror goes to the sink's `/status/204`: nginx does not read a mirror's answer, so it can
    keep a connection to the sink only when the answer has no body (else one connection per
    mirrored request: about twice nginx's CPU per request, measured)."""
    mirror = "mirror /mirror;" if sink else ""
    mirror_location = f"""
        location = /mirror {{
            internal;
            proxy_pass http://sink/status/204;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}""" if sink else ""
    sink_upstream = f"upstream sink {{ server 127.0.0.1:{sink}; keepalive 64; }}" if sink else ""
    return f"""# Written by scripts/bench.
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream up {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    {sink_upstream}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            {mirror}
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}{mirror_location}
    }}
}}
"""


def strangler_conf(mode, port, admin, upstream, brokers, spool_dir=None, comparator=True):
    """One route on the bench path, signed (github scheme), in `mode`; `split` is at 50 %."""
    split = "share = 50\n" if mode == "split" else ""
    spool = f'\n[spool]\ndir = "{spool_dir}"\nwrite_ahead = true\n' if spool_dir else ""
    if not comparator:
        spool += "\n[comparator]\nenabled = false\n"
    return f"""# Written by scripts/bench. Everything not set here is the default.
[server]
listen = "127.0.0.1:{port}"

[admin]
listen = "127.0.0.1:{admin}"

[legacy]
url = "http://127.0.0.1:{upstream}"

[kafka]
brokers = "{brokers}"
{spool}
[[route]]
name = "bench"
match = {{ path = "{PATH}" }}
topic = "{TOPIC}"
signature = {{ scheme = "github", secrets_env = ["{SECRET_ENV}"] }}
mode = "{mode}"
{split}"""
