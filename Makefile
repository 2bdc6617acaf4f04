# Shortcuts for the scripts that do the work.
.PHONY: test matrix

test:
	./run test

matrix:
	.ci/matrix
