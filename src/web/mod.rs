pub mod access_log;
pub mod body;
pub mod caller;
pub mod deadline;
pub mod problem;
