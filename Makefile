# Shortcuts for the commands in README.md; `make test` is the README's test command.
.PHONY: test run stub tail sim sim-swarm bench lint promtool ci

CARGO ?= cargo

test: ## cargo test --workspace (the README's test command)
	$(CARGO) test --workspace

run: ## the engine on the built-in day (embedded wire), then its summary
	$(CARGO) run --release --bin decision

stub: ## the wire server on 127.0.0.1:8091, the built-in day at 60x
	$(CARGO) run --release --bin wire-stub

tail: ## print the events of the wire on 127.0.0.1:8091
	$(CARGO) run --release --bin wire-tail -- --url http://127.0.0.1:8091

sim: ## every named scenario, 20 seeds each
	$(CARGO) xtask sim run --scenario all --seeds 20

sim-swarm: ## the swarm sweep, 1,000 seeds
	$(CARGO) xtask sim --seeds 1000 --jobs 2

bench: ## every benchmark (release; the fan-out bench takes about 5 minutes)
	$(CARGO) bench --workspace

lint: ## formatting, clippy, the tidy rules
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) xtask tidy

promtool: ## promtool check metrics on the binaries' /metrics
	bash .ci/promtool

ci: ## what CI runs (long)
	bash .ci/run
