"""AI triage: providers (Gemini, offline), the durable queue, routing, SLA and scheduled jobs."""
