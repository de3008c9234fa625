//! Delivery journal adapter: a durable embedded store of the side effects done for
//! each mail, so that a re-run resumes instead of repeating (placeholder).
