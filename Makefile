# The README's two commands. Both start project-local PostgreSQL and Redis when
# DATABASE_URL / REDIS_URL are not set (see scripts/with-services.sh).
CARGO_TARGET_DIR ?= $(HOME)/.cache/eam-target
export CARGO_TARGET_DIR

.PHONY: demo test lint fmt sqlx-check sqlx-prepare

## Runs the demo: services, bank simulator, worker and API; syncs a demo tenant and prints it.
demo:
	cargo build --quiet --bin eam
	EAM_NO_MOTO=1 scripts/with-services.sh $(CARGO_TARGET_DIR)/debug/eam demo

## Runs the whole test suite against real PostgreSQL, Redis and the bank simulator over mTLS.
test:
	cargo build --quiet --workspace --all-targets
	@# The performance test checks its returns against PyPI's pyxirr, an implementation not ours.
	python3 -c 'import pyxirr' 2>/dev/null || python3 -m pip install --quiet pyxirr \
		|| python3 -m pip install --quiet --break-system-packages pyxirr
	@# The webhook tests check signatures with PyPI's standardwebhooks, an implementation not ours.
	python3 -c 'import standardwebhooks' 2>/dev/null || python3 -m pip install --quiet standardwebhooks \
		|| python3 -m pip install --quiet --break-system-packages standardwebhooks
	@# The e-mail tests run a real SMTP server: PyPI's aiosmtpd.
	python3 -c 'import aiosmtpd' 2>/dev/null || python3 -m pip install --quiet aiosmtpd \
		|| python3 -m pip install --quiet --break-system-packages aiosmtpd
	@# The report tests read the rendered PDFs back with poppler (pdftotext, pdfinfo, pdffonts).
	command -v pdftotext >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq poppler-utils; }
	scripts/with-services.sh cargo test --workspace --quiet

# cargo-deny: bans (duplicate versions, a second TLS stack), licences and sources, per
# deny.toml, over every workspace member (without --workspace it reads only the root package's
# graph, and a crate nothing links yet, like report, would go unchecked). Not advisories: that clones the RustSec database from GitHub, unreachable here.
# module-cycles: no two modules of a crate import each other.
lint:
	python3 scripts/module-cycles.py
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo deny --workspace check bans licenses sources

fmt:
	cargo fmt --all

## Fails when the offline data of the compile-checked SQL (.sqlx/) no longer matches the queries
## and the migrations (checked against a scratch database on the project-local PostgreSQL).
sqlx-check:
	EAM_NO_MOTO=1 scripts/with-services.sh scripts/sqlx-prepare.sh --check

## Rewrites .sqlx/ after a query or a migration changed (commit the result).
sqlx-prepare:
	EAM_NO_MOTO=1 scripts/with-services.sh scripts/sqlx-prepare.sh
