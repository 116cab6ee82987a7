//! A Python consumer written from docs/consumer-protocol.md alone.
