"""Placeholder replaced below."""


def import_ser2net(file, registry):
    raise NotImplementedError
