"""Ingest: from feed list to extracted article.

Stage modules, in the order data flows through them:

* ``feedlist``: the user's feeds.yaml, validated entry by entry;
* ``polling``: conditional GETs of the feeds that are due; ``parsing``: feed bodies into entries;
* ``schedule``: when each feed is due again; ``shards``: which worker polls which feed;
* ``http`` (limits, caps, classification), ``guard`` (SSRF), ``politeness`` (per-host pacing),
  ``robots``: every outbound request;
* ``pages``: article downloads; ``extraction``: trafilatura, dates (``dates``), language
  (``language``) and canonical URLs (``urls``).
"""
