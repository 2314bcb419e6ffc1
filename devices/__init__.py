"""The device registry, the device-type catalogue and the reading schema.

Imports none of the other urbanwatch packages.
"""
