"""The Module 05 workbook's helpers, one sub-package per concern (see the folder names).

- ``platform``: configuration, ports, the JVM, the embedded services (Kafka broker, Airflow UI) and
  their start/stop/status, the doctor, the JupyterLab launcher;
- ``kafka``: bounded clients and admin queries; ``streaming``: the stream loop with its DLQ, metrics,
  consumer groups; ``spark``: the session and plan tools; ``airflow``: setup, the in-process runner,
  fault injection; ``data``: the e-commerce generator and the quality batches; ``quality``: GX suites
  and the gate; ``alerts``: the alert sink and a local webhook; ``viz``: the charts; ``feedback``:
  grading of learners' tests, DAG and code checks.

Importing this package (or any module of it) does nothing: no folders are made, no service is
started, no network is touched. Each module has an explicit ``setup()``/``start_*()`` for that.
"""
