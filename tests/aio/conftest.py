"""Async tests run in a pytest process of their own.

Playwright's sync API keeps its event loop marked as running in the thread once it
has started, and pytest-asyncio cannot run a test while another loop runs. The sync
tests in the parent folder start it, so ``./run test`` runs this folder separately.
"""
