pub mod http;
pub mod repo;
pub mod seeded;
pub mod server;
