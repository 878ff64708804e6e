"""The HTTPS read API: a small WSGI application over the lake, served by the `api` Cloud
Function (functions-framework) and locally by `barlake serve`.

- app.py      routing, API keys, ETag/304, errors: one `handle(environ)` for every server
- params.py   strict validation of every input (pure; no I/O, no pyarrow)
- reads.py    the cached reads: generation-keyed values, coherent after every write
- render.py   JSON / CSV / Parquet bodies
- openapi.py  the OpenAPI 3.1 document served at /openapi.json
- function.py the functions-framework entry point (`api`)

Importing this package is cheap: pyarrow and the adapters load when the app is first built.
"""
