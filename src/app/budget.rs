//! Use case (app), a decorator over the identity port: the bound on bus calls per mail
//! (issue 19 §3): identity look-ups, additional
//! requesters and uploads all draw on one budget, `max_calls_per_mail`. Look-ups are
//! cached within the mail, so one address written many times costs its calls once.
//! Past the budget the use case stops starting new work, delivers what it has and
//! says in the ticket what was left out: a permanent outcome, never a TEMPFAIL that
//! would repeat the same calls.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use crate::domain::identity::Person;
use crate::ports::{IdentityDirectory, PortError};

/// How many bus calls of the variable kind one mail may still make.
#[derive(Debug)]
pub struct CallBudget {
    limit: usize,
    used: Cell<usize>,
}

impl CallBudget {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            used: Cell::new(0),
        }
    }

    /// Counts one call.
    pub fn spend(&self) {
        self.used.set(self.used.get().saturating_add(1));
    }

    /// Calls counted so far.
    pub fn used(&self) -> usize {
        self.used.get()
    }

    /// No new piece of work may start.
    pub fn exhausted(&self) -> bool {
        self.used.get() >= self.limit
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

type Cached<T> = RefCell<HashMap<String, Result<T, PortError>>>;

/// An identity directory that counts its calls on a [`CallBudget`] and answers a
/// repeated question from memory (transient failures are not kept: a later
/// question may succeed).
pub struct BudgetedDirectory<'a, I> {
    inner: &'a I,
    budget: &'a CallBudget,
    persons: Cached<Option<Person>>,
    by_email: Cached<Vec<String>>,
}

impl<'a, I> BudgetedDirectory<'a, I> {
    pub fn new(inner: &'a I, budget: &'a CallBudget) -> Self {
        Self {
            inner,
            budget,
            persons: RefCell::default(),
            by_email: RefCell::default(),
        }
    }
}

impl<I: IdentityDirectory> IdentityDirectory for BudgetedDirectory<'_, I> {
    async fn person(&self, cn: &str) -> Result<Option<Person>, PortError> {
        if let Some(r) = self.persons.borrow().get(cn) {
            return r.clone();
        }
        self.budget.spend();
        let r = self.inner.person(cn).await;
        if !matches!(r, Err(PortError::Transient(_))) {
            self.persons.borrow_mut().insert(cn.to_string(), r.clone());
        }
        r
    }

    async fn persons_by_email(&self, email: &str) -> Result<Vec<String>, PortError> {
        if let Some(r) = self.by_email.borrow().get(email) {
            return r.clone();
        }
        self.budget.spend();
        let r = self.inner.persons_by_email(email).await;
        if !matches!(r, Err(PortError::Transient(_))) {
            self.by_email
                .borrow_mut()
                .insert(email.to_string(), r.clone());
        }
        r
    }
}
