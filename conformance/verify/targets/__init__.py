"""Files of the bundled targets, read at run time by :mod:`forkshare.conformance.verify.target`:
Apache's configuration template, the Node cluster supervisor, and what was measured of them
(``MEASURED.md``). No code lives here."""
