"""Identities of the federation's parties, proven by X.509 certificates (no gRPC here).

    spiffe.py        SPIFFE IDs: spiffe://<trust-domain>/domain/<name>, .../gateway
    credentials.py   one party's certificate, key and trusted CA, loaded and checked
    dev_ca.py        a development CA: `fedgate certs init` / `fedgate certs issue`

Errors:

    IdentityError                  base; a certificate setup the party cannot use
    ├── MissingCredentials         no certificate/key/CA where expected (says how to create)
    └── InvalidCertificate         unreadable, expired, wrong CA, no or several SPIFFE IDs
"""

from __future__ import annotations
