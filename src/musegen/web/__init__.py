"""The web studio (``musegen serve``) and the blind listening test's page
(``musegen listen-test``): FastAPI apps serving their own pages, with the work in a bounded
pool of worker processes (:mod:`musegen.web.jobs`). Needs the ``web`` extra; nothing here is
imported by ``musegen --help``.
"""
