//! placeholder: the auth helper fills this crate
