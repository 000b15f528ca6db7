# The README's two commands: `make dev` and `make test`.
.PHONY: dev test lint bench bootstrap stop

bootstrap:
	bash scripts/bootstrap.sh

dev: bootstrap
	bash scripts/dev.sh

test: bootstrap
	.venv/bin/ruff check .
	.venv/bin/pytest

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

bench: bootstrap
	bash scripts/bench.sh

stop:
	bash scripts/db.sh stop
	bash scripts/mail.sh stop
