//! A model's chat template (Jinja, from its GGUF metadata or tokenizer_config.json) wrapped
//! around a prompt, so instruct models are asked the way they were trained.
//!
//! The template is rendered once with one user message holding a sentinel; the text before and
//! after the sentinel is the wrap. The last line of a P2 template (e.g. `Answer: Flight`) is the
//! start of the answer, so it goes after the generation prompt, inside the assistant's turn.

use anyhow::{bail, Context, Result};
use serde::Serialize;

/// Text placed around a user message by a chat template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatWrap {
    pub before: String,
    pub after: String,
}

const SENTINEL: &str = "\u{1}LANTERN_USER_MESSAGE\u{1}";

impl ChatWrap {
    /// Renders `template` for one user message with `add_generation_prompt = true`. `bos_token`
    /// is rendered empty: the tokenizer adds the model's BOS itself where the model wants one.
    pub fn from_template(template: &str) -> Result<Self> {
        let text = render_chat(template, &[("user", SENTINEL)], true)?;
        let Some((before, after)) = text.split_once(SENTINEL) else {
            bail!("the model's chat template does not show the user's message");
        };
        if after.contains(SENTINEL) {
            bail!("the model's chat template shows the user's message twice");
        }
        Ok(ChatWrap {
            before: before.to_string(),
            after: after.to_string(),
        })
    }

    /// Wraps a P2 template source: everything up to its last line is the user's message; the
    /// last line (the answer's start, after the last player) follows the generation prompt.
    /// Player markers are left untouched.
    pub fn wrap_template_source(&self, src: &str) -> Result<String> {
        if [&self.before, &self.after]
            .iter()
            .any(|t| t.contains("{{") || t.contains("}}"))
        {
            bail!("the chat template's text contains `{{{{` or `}}}}`, which would read as player markers");
        }
        let last_player = src.rfind("}}").map_or(0, |i| i + 2);
        let (message, lead) = match src[last_player..].rfind('\n') {
            Some(i) => (&src[..last_player + i], &src[last_player + i + 1..]),
            None => (src, ""),
        };
        Ok(format!("{}{message}{}{lead}", self.before, self.after))
    }
}

/// Renders `template` for a conversation of `(role, content)` messages (what an
/// OpenAI-compatible chat endpoint receives). `bos_token` is rendered empty: the tokenizer adds
/// the model's BOS itself where the model wants one.
pub fn render_chat(
    template: &str,
    messages: &[(&str, &str)],
    add_generation_prompt: bool,
) -> Result<String> {
    let mut env = minijinja::Environment::new();
    env.add_function(
        "raise_exception",
        |msg: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                msg,
            ))
        },
    );
    env.add_template("chat", template)
        .context("the model's chat template does not parse")?;
    let messages: Vec<_> = messages
        .iter()
        .map(|(role, content)| minijinja::context! { role => role, content => content })
        .collect();
    env.get_template("chat")?
        .render(minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => "",
            eos_token => "",
        })
        .context("rendering the model's chat template")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-135M-Instruct's template, as stored in its GGUF.
    const CHATML: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn chatml_wraps_the_message_and_puts_the_answer_lead_in_the_assistant_turn() {
        let w = ChatWrap::from_template(CHATML).unwrap();
        assert!(w.before.ends_with("<|im_start|>user\n"), "{:?}", w.before);
        assert_eq!(w.after, "<|im_end|>\n<|im_start|>assistant\n");
        let src = "Pick.\n{{a: One.\n}}Question: A or B?\nAnswer: Flight";
        let wrapped = w.wrap_template_source(src).unwrap();
        assert!(wrapped.ends_with(
            "{{a: One.\n}}Question: A or B?<|im_end|>\n<|im_start|>assistant\nAnswer: Flight"
        ));
    }

    #[test]
    fn a_template_that_hides_the_message_or_raises_is_an_error() {
        let e = ChatWrap::from_template("{{ 'no message here' }}").unwrap_err();
        assert!(e.to_string().contains("user's message"), "{e}");
        let e = ChatWrap::from_template("{{ raise_exception('only system roles') }}").unwrap_err();
        assert!(format!("{e:#}").contains("only system roles"), "{e:#}");
        assert!(ChatWrap::from_template("{% for %}").is_err());
    }
}
