//! queue placeholder
