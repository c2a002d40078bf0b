pub mod http;
pub mod pg;
pub mod repo;
pub mod seeded;
pub mod server;
