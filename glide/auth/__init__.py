"""Authentication: password hashing, HTTP tokens (JWT), socket credentials (GlideIM §4.2) and send tickets."""

from glide.auth.credential import ClientCredentials, CredentialService
from glide.auth.passwords import hash_password, verify_password
from glide.auth.ticket import ticket, ticket_problem, verify_ticket
from glide.auth.tokens import Claims, TokenService

__all__ = [
    "Claims",
    "ClientCredentials",
    "CredentialService",
    "TokenService",
    "hash_password",
    "ticket",
    "ticket_problem",
    "verify_password",
    "verify_ticket",
]
