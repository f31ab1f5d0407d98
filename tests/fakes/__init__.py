"""Local stand-ins for the outside services the product talks to (the Telegram Bot API,
an SMS provider, an SMTP relay), shared by the tests and the benchmarks in ``bench/``."""
