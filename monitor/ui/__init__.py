"""The review page (``monitor ui``): a local web app to judge flagged matches with the keyboard.

* ``app``: the Starlette application (pages, the JSON API, static assets);
* ``chart``: the coverage chart, drawn as SVG without a plotting library.

Everything it serves comes from this package: it works offline, with no CDN.
"""
