// #/login: username and password; the server sets an HttpOnly session cookie.

import { api } from "./api.js";
import { errorBox, field, h, replace } from "./dom.js";

export async function render(root, context) {
  const notice = context.notice();
  const message = h(
    "div",
    { class: "form-message" },
    notice ? h("p", { class: "notice", role: "status" }, notice) : null,
  );
  const username = h("input", {
    name: "username",
    autocomplete: "username",
    required: true,
    autocapitalize: "none",
    spellcheck: "false",
  });
  const password = h("input", {
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const submit = h("button", { type: "submit" }, "Log in");
  const form = h(
    "form",
    { class: "login-form", "aria-labelledby": "login-title", novalidate: true },
    field("Username", username),
    field("Password", password),
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!username.value || !password.value) {
      replace(message, errorBox("Enter your username and password."));
      (username.value ? password : username).focus();
      return;
    }
    submit.disabled = true;
    try {
      const session = await api("/ui/session", {
        method: "POST",
        body: { username: username.value, password: password.value },
      });
      context.begin(session);
    } catch (error) {
      password.value = "";
      replace(message, errorBox(error.message));
      password.focus();
    } finally {
      submit.disabled = false;
    }
  });
  replace(
    root,
    h(
      "section",
      { class: "login card" },
      h("h1", { id: "login-title" }, "Log in to PoundCake"),
      h("p", { class: "muted" }, "Use your StackStorm account."),
      message,
      form,
    ),
  );
  username.focus();
}
