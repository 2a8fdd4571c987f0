"""Stage glue: what the DAG tasks (and the CLI's stage commands) call.

Each module here is one stage's steps for one run date. A step takes the settings and the run date,
resolved once at the edge (a CLI command, or a DAG task through :func:`common.resolve_run`), calls
the domain code, and returns something small and JSON-friendly for XCom (paths, counts, ids).
The domain code lives elsewhere: ``pipelines.data``, ``pipelines.quality``, ``pipelines.transform``,
the model families and ``pipelines.ml``, ``pipelines.report``. Only :mod:`common` imports Airflow.
"""
