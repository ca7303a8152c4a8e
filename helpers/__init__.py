"""Small helper modules the Module 05 lab notebooks call.

Importing this package does nothing: no folders are made, no service is started, no network is
touched. Each module has an explicit ``setup()``/``start_*()`` for that.
"""
