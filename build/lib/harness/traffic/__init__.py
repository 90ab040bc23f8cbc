"""Traffic: clients that write one record per request, and the Locust users built on them.

`log` defines the request record and log; `clients` holds the plain protocol clients (no
gevent, safe in the pytest process); `users` wraps them as Locust users (imports Locust, so
only Locust processes import it); `drive` runs those users headless in a subprocess and
writes the request log for a scenario.
"""
