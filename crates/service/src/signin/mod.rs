//! Sign-in for people: GitHub's OAuth web flow and OpenID Connect, ending in
//! a server-side session held by a signed cookie (docs/sign-in.md).
//!
//! One module per concern, none of them knowing axum: [`config`] (the
//! settings and their checks), [`grant`] (who maps to which tenant and
//! role; [`invitations`]: people let in by their GitHub login), [`github`] and [`oidc`] (talking to the providers), [`session`]
//! (rows in the database and the signed cookies), [`csrf`] (what a
//! cookie-authenticated write must carry) and [`flow`] (the use cases the
//! handlers in `routes::signin` call).

pub mod config;
pub mod csrf;
pub mod flow;
pub mod github;
pub mod grant;
pub mod invitations;
pub mod oidc;
pub mod session;
