"""Chat with the documents in a browser: ``python app.py [--index DIR] [--host HOST] [--port PORT]``.

Binds 127.0.0.1:7860 by default. A login comes from the environment (``QA_AUTH=user:password``) or a file
(``QA_AUTH_FILE``), never from the command line. The app itself lives in :mod:`qa.web`.
"""

from qa.web import main

if __name__ == "__main__":
    raise SystemExit(main())
