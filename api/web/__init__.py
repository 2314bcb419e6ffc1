"""The web pages, served by the API's own process: plain HTML, CSS and JavaScript modules
(no build step), third-party libraries vendored under ``static/vendor`` by ``vendor.sh``.

The pages call only the public API, as any other client does; the HTML and static files
themselves need no login (they hold no data).
"""
