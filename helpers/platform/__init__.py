"""The platform under the labs: configuration, ports, the JVM, the embedded services and the doctor.

``python -m helpers.platform.services start|stop|status`` (``make services``), ``python -m
helpers.platform.doctor`` (``make doctor``) and ``python -m helpers.platform.jupyter`` (``make lab``).
"""
