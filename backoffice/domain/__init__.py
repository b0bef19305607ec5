"""The rules of carebox. Nothing here reads the request or commits."""


class DomainError(Exception):
    """A rule refused the change; the message is safe to show to the user."""


class PermissionDenied(DomainError):
    pass


class ConflictError(DomainError):
    """Someone else changed the object since the user loaded it."""
