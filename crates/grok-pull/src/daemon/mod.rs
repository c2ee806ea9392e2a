//! What only the daemon has: the push socket, the HTTP notification
//! endpoint, file watches, the service-manager protocol and the HTTP
//! metrics endpoint. The loop that drives them is [`crate::engine`].

pub mod httpmetrics;
pub mod listener;
pub mod notify_http;
pub mod service;
pub mod watch;
