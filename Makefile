# The two entry points of the README. Both set up a fresh Debian machine first.
.PHONY: chat test build

chat:
	bash tools/chat.sh

test:
	bash tools/test.sh

build:
	swift build -c release
