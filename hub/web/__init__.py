"""hub.web: the HTTP server that makes a running hub visible (``--http``).

* `options`: the command-line options (no aiohttp import: a hub without
  --http never loads the web stack);
* `views`: the JSON the page and the API show, computed from the ports'
  snapshots at request time (no aiohttp);
* `metrics`: a prometheus_client Collector that reads the same counters at
  scrape time;
* `server`: the listening socket (TLS, allow/deny, limits as TCP listeners)
  and the aiohttp application: page, JSON API, WebSockets for live status
  and taps, /metrics and /healthz.

The web layer sees hubs only through a provider, a callable returning the
current list of `Hub` objects, so a process that replaces its hubs (a config
reload) keeps one server.
"""
