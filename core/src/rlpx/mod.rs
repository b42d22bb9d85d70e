//! RLPx
