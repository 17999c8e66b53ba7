--
-- PostgreSQL database dump
--

\restrict GrVzddPtJ4t9kzXAKYH8ZlC0WoUEwTXbe8S1SMlN87yaHd4Wbe8RWPb9cb0Hnbh

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: adapters_append_only(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.adapters_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only'; END $$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: adapter_versions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.adapter_versions (
    id integer NOT NULL,
    name character varying(96) NOT NULL,
    version character varying(64) NOT NULL,
    digest character varying(71) NOT NULL,
    version_key text NOT NULL COLLATE pg_catalog."C",
    method character varying(32) NOT NULL,
    source_format character varying(32) NOT NULL,
    base_model_id integer,
    base_name character varying(256),
    base_revision character varying(256),
    base_fingerprint character varying(80),
    manifest text NOT NULL,
    size_bytes integer NOT NULL,
    status character varying(16) NOT NULL,
    status_reason text,
    created_at timestamp with time zone NOT NULL,
    created_by character varying(256) NOT NULL
);


--
-- Name: adapter_versions_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.adapter_versions_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: adapter_versions_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.adapter_versions_id_seq OWNED BY public.adapter_versions.id;


--
-- Name: alias_history; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alias_history (
    id integer NOT NULL,
    name character varying(96) NOT NULL,
    alias character varying(64) NOT NULL,
    action character varying(16) NOT NULL,
    version character varying(64),
    digest character varying(71),
    previous character varying(64),
    at timestamp with time zone NOT NULL,
    actor character varying(256) NOT NULL,
    note text NOT NULL
);


--
-- Name: alias_history_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.alias_history_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: alias_history_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.alias_history_id_seq OWNED BY public.alias_history.id;


--
-- Name: aliases; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.aliases (
    name character varying(96) NOT NULL,
    alias character varying(64) NOT NULL,
    version_id integer NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: audit_events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.audit_events (
    id integer NOT NULL,
    at timestamp with time zone NOT NULL,
    actor character varying(256) NOT NULL,
    action character varying(32) NOT NULL,
    name character varying(96),
    version character varying(64),
    details text NOT NULL
);


--
-- Name: audit_events_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.audit_events_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: audit_events_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.audit_events_id_seq OWNED BY public.audit_events.id;


--
-- Name: base_models; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.base_models (
    id integer NOT NULL,
    name character varying(256) NOT NULL,
    revision character varying(256) NOT NULL,
    version character varying(64),
    quantization character varying(32) NOT NULL,
    fingerprint character varying(80),
    structure_digest character varying(80),
    details text NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: base_models_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.base_models_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: base_models_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.base_models_id_seq OWNED BY public.base_models.id;


--
-- Name: base_relations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.base_relations (
    from_id integer NOT NULL,
    to_id integer NOT NULL,
    relation character varying(32) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    created_by character varying(256) NOT NULL
);


--
-- Name: blob_leases; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.blob_leases (
    id integer NOT NULL,
    lease character varying(64) NOT NULL,
    sha256 character varying(64) NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: blob_leases_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.blob_leases_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: blob_leases_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.blob_leases_id_seq OWNED BY public.blob_leases.id;


--
-- Name: evals; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.evals (
    id integer NOT NULL,
    version_id integer NOT NULL,
    metric character varying(128) NOT NULL,
    value double precision NOT NULL,
    dataset character varying(256) NOT NULL,
    split character varying(64) NOT NULL,
    notes text NOT NULL,
    recorded_at timestamp with time zone NOT NULL,
    actor character varying(256) NOT NULL
);


--
-- Name: evals_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.evals_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: evals_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.evals_id_seq OWNED BY public.evals.id;


--
-- Name: hub_links; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.hub_links (
    id integer NOT NULL,
    name character varying(96) NOT NULL,
    version character varying(64) NOT NULL,
    digest character varying(71) NOT NULL,
    direction character varying(8) NOT NULL,
    endpoint character varying(512) NOT NULL,
    repo_type character varying(16) NOT NULL,
    repo_id character varying(256) NOT NULL,
    revision character varying(256) NOT NULL,
    commit character varying(64) NOT NULL,
    tag character varying(256),
    at timestamp with time zone NOT NULL,
    actor character varying(256) NOT NULL
);


--
-- Name: hub_links_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.hub_links_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: hub_links_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.hub_links_id_seq OWNED BY public.hub_links.id;


--
-- Name: lineage_edges; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.lineage_edges (
    id integer NOT NULL,
    child_id integer NOT NULL,
    "position" integer NOT NULL,
    operation character varying(64) NOT NULL,
    parent_name character varying(96) NOT NULL,
    parent_version character varying(64) NOT NULL,
    parent_digest character varying(71) NOT NULL,
    weight double precision
);


--
-- Name: lineage_edges_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.lineage_edges_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: lineage_edges_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.lineage_edges_id_seq OWNED BY public.lineage_edges.id;


--
-- Name: schema_info; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_info (
    key character varying(64) NOT NULL,
    value character varying(256) NOT NULL
);


--
-- Name: signatures; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.signatures (
    id integer NOT NULL,
    version_id integer NOT NULL,
    key_id character varying(64) NOT NULL,
    public_key character varying(64) NOT NULL,
    signer character varying(64) NOT NULL,
    signature character varying(128) NOT NULL,
    statement text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    created_by character varying(256) NOT NULL
);


--
-- Name: signatures_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.signatures_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: signatures_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.signatures_id_seq OWNED BY public.signatures.id;


--
-- Name: tags; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.tags (
    version_id integer NOT NULL,
    key character varying(128) NOT NULL,
    value text NOT NULL
);


--
-- Name: training_data; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.training_data (
    id integer NOT NULL,
    version_id integer NOT NULL,
    sha256 character varying(64) NOT NULL,
    kind character varying(16) NOT NULL,
    source text NOT NULL,
    files integer NOT NULL,
    size integer NOT NULL
);


--
-- Name: training_data_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.training_data_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: training_data_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.training_data_id_seq OWNED BY public.training_data.id;


--
-- Name: version_files; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.version_files (
    version_id integer NOT NULL,
    path character varying(512) NOT NULL,
    sha256 character varying(64) NOT NULL,
    size integer NOT NULL,
    role character varying(16) NOT NULL
);


--
-- Name: adapter_versions id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.adapter_versions ALTER COLUMN id SET DEFAULT nextval('public.adapter_versions_id_seq'::regclass);


--
-- Name: alias_history id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alias_history ALTER COLUMN id SET DEFAULT nextval('public.alias_history_id_seq'::regclass);


--
-- Name: audit_events id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_events ALTER COLUMN id SET DEFAULT nextval('public.audit_events_id_seq'::regclass);


--
-- Name: base_models id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.base_models ALTER COLUMN id SET DEFAULT nextval('public.base_models_id_seq'::regclass);


--
-- Name: blob_leases id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.blob_leases ALTER COLUMN id SET DEFAULT nextval('public.blob_leases_id_seq'::regclass);


--
-- Name: evals id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.evals ALTER COLUMN id SET DEFAULT nextval('public.evals_id_seq'::regclass);


--
-- Name: hub_links id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.hub_links ALTER COLUMN id SET DEFAULT nextval('public.hub_links_id_seq'::regclass);


--
-- Name: lineage_edges id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.lineage_edges ALTER COLUMN id SET DEFAULT nextval('public.lineage_edges_id_seq'::regclass);


--
-- Name: signatures id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.signatures ALTER COLUMN id SET DEFAULT nextval('public.signatures_id_seq'::regclass);


--
-- Name: training_data id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.training_data ALTER COLUMN id SET DEFAULT nextval('public.training_data_id_seq'::regclass);


--
-- Data for Name: adapter_versions; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.adapter_versions VALUES (1, 'chat-lora', '1', 'sha256:5eb208794ea6639b87302a205c87b7e3b2a7092c321a833c63c1b30783a44cc7', 'a0a1.4010', 'lora', 'peft', NULL, 'tiny/llama', NULL, NULL, '{"base_model":{"fingerprint":null,"name":"tiny/llama","revision":null},"config":{"alora_invocation_tokens":null,"alpha_pattern":{},"arrow_config":null,"auto_mapping":null,"base_model_name_or_path":"tiny/llama","bias":"none","corda_config":null,"ensure_weight_tying":false,"eva_config":null,"exclude_modules":null,"fan_in_fan_out":false,"inference_mode":true,"init_lora_weights":true,"kasa_config":null,"layer_replication":null,"layers_pattern":null,"layers_to_transform":null,"loftq_config":{},"lora_alpha":8,"lora_bias":false,"lora_dropout":0.0,"lora_ga_config":null,"megatron_config":null,"megatron_core":"megatron.core","modules_to_save":null,"monteclora_config":null,"peft_type":"LORA","peft_version":"0.21.2","qalora_group_size":16,"r":4,"rank_pattern":{},"revision":null,"target_modules":["q_proj","v_proj"],"target_parameters":null,"task_type":"CAUSAL_LM","trainable_token_indices":null,"use_bdlora":null,"use_dora":false,"use_qalora":false,"use_rslora":false,"velora_config":null},"files":[{"path":"README.md","role":"card","sha256":"6451c2a103f75266af1d2e786889edfa76b10faabe29e903188e442f1fd4e038","size":5174},{"path":"adapter_config.json","role":"config","sha256":"fbd87ffe839108b162a948756c1cc3ac9a2fe2a1b79cb3d9e9a62e08ab835c1b","size":1086},{"path":"adapter_model.safetensors","role":"weights","sha256":"58ee4b1395eca418041ec2d687b93164cdfe77bf8dd395d2dea92aa24c89ea11","size":4608}],"format":"adapter-registry/manifest-1","lineage":null,"method":"lora","requires":{},"source_format":"peft","training_data":[{"kind":"given","sha256":"0000000000000000000000000000000000000000000000000000000000000001"}]}', 10868, 'active', NULL, '2026-12-01 09:35:41+00', 'fixture@schema2');
INSERT INTO public.adapter_versions VALUES (2, 'chat-lora', '2.0', 'sha256:33345a4ad8c76ba1fb9d142210e5299b11b15f004ed70804dd09defaa33a7393', 'a0a2.4010', 'lora', 'peft', NULL, 'tiny/llama', NULL, NULL, '{"base_model":{"fingerprint":null,"name":"tiny/llama","revision":null},"config":{"alora_invocation_tokens":null,"alpha_pattern":{},"arrow_config":null,"auto_mapping":null,"base_model_name_or_path":"tiny/llama","bias":"none","corda_config":null,"ensure_weight_tying":false,"eva_config":null,"exclude_modules":null,"fan_in_fan_out":false,"inference_mode":true,"init_lora_weights":true,"kasa_config":null,"layer_replication":null,"layers_pattern":null,"layers_to_transform":null,"loftq_config":{},"lora_alpha":8,"lora_bias":false,"lora_dropout":0.0,"lora_ga_config":null,"megatron_config":null,"megatron_core":"megatron.core","modules_to_save":null,"monteclora_config":null,"peft_type":"LORA","peft_version":"0.21.2","qalora_group_size":16,"r":4,"rank_pattern":{},"revision":null,"target_modules":["q_proj","v_proj"],"target_parameters":null,"task_type":"CAUSAL_LM","trainable_token_indices":null,"use_bdlora":null,"use_dora":false,"use_qalora":false,"use_rslora":false,"velora_config":null},"files":[{"path":"README.md","role":"card","sha256":"6451c2a103f75266af1d2e786889edfa76b10faabe29e903188e442f1fd4e038","size":5174},{"path":"adapter_config.json","role":"config","sha256":"fbd87ffe839108b162a948756c1cc3ac9a2fe2a1b79cb3d9e9a62e08ab835c1b","size":1086},{"path":"adapter_model.safetensors","role":"weights","sha256":"07809fab03643ba6e6d647ade2073e85c1de5617b4e0a6a90206b1404482b496","size":4608}],"format":"adapter-registry/manifest-1","lineage":null,"method":"lora","requires":{},"source_format":"peft","training_data":[]}', 10868, 'active', NULL, '2026-12-01 09:35:46+00', 'fixture@schema2');
INSERT INTO public.adapter_versions VALUES (3, 'team/ia3-small', '1', 'sha256:c24c25e8548038a36149b2e2a7e0192252379f7c2915e493e57f1e10c65c5f83', 'a0a1.4010', 'ia3', 'peft', NULL, 'tiny/llama', 'main', NULL, '{"base_model":{"fingerprint":null,"name":"tiny/llama","revision":"main"},"config":{"auto_mapping":null,"base_model_name_or_path":"tiny/llama","exclude_modules":null,"fan_in_fan_out":false,"feedforward_modules":["down_proj"],"inference_mode":true,"init_ia3_weights":true,"modules_to_save":null,"peft_type":"IA3","peft_version":"0.21.2","revision":null,"target_modules":["down_proj","k_proj","v_proj"],"task_type":"CAUSAL_LM"},"files":[{"path":"README.md","role":"card","sha256":"1e85c6319d73a6e4e06a7cf76ee117e1228f32c3ad0824f22a0c252cc20b62a3","size":5167},{"path":"adapter_config.json","role":"config","sha256":"d43e5813bbedcde07d894cde19c54544b5b50608c440f3234384aba46f177629","size":421},{"path":"adapter_model.safetensors","role":"weights","sha256":"d311b6b44160c72de05c94a9b56ab3fa57cb111245c48055bb698b15639fb9b6","size":1480}],"format":"adapter-registry/manifest-1","lineage":null,"method":"ia3","requires":{},"source_format":"peft","training_data":[]}', 7068, 'yanked', 'superseded', '2026-12-01 09:35:50+00', 'fixture@schema2');


--
-- Data for Name: alias_history; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.alias_history VALUES (1, 'chat-lora', 'prod', 'push', '1', 'sha256:5eb208794ea6639b87302a205c87b7e3b2a7092c321a833c63c1b30783a44cc7', NULL, '2026-12-01 09:35:41+00', 'fixture@schema2', '');
INSERT INTO public.alias_history VALUES (2, 'chat-lora', 'staging', 'push', '2.0', 'sha256:33345a4ad8c76ba1fb9d142210e5299b11b15f004ed70804dd09defaa33a7393', NULL, '2026-12-01 09:35:46+00', 'fixture@schema2', '');


--
-- Data for Name: aliases; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.aliases VALUES ('chat-lora', 'prod', 1, '2026-12-01 09:35:41+00');
INSERT INTO public.aliases VALUES ('chat-lora', 'staging', 2, '2026-12-01 09:35:46+00');


--
-- Data for Name: audit_events; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.audit_events VALUES (1, '2026-12-01 09:35:41+00', 'fixture@schema2', 'push', 'chat-lora', '1', '{"alias": "prod", "digest": "sha256:5eb208794ea6639b87302a205c87b7e3b2a7092c321a833c63c1b30783a44cc7", "method": "lora", "operation": null}');
INSERT INTO public.audit_events VALUES (2, '2026-12-01 09:35:46+00', 'fixture@schema2', 'push', 'chat-lora', '2.0', '{"alias": "staging", "digest": "sha256:33345a4ad8c76ba1fb9d142210e5299b11b15f004ed70804dd09defaa33a7393", "method": "lora", "operation": null}');
INSERT INTO public.audit_events VALUES (3, '2026-12-01 09:35:50+00', 'fixture@schema2', 'push', 'team/ia3-small', '1', '{"alias": null, "digest": "sha256:c24c25e8548038a36149b2e2a7e0192252379f7c2915e493e57f1e10c65c5f83", "method": "ia3", "operation": null}');
INSERT INTO public.audit_events VALUES (4, '2026-12-01 09:35:54+00', 'fixture@schema2', 'yank', 'team/ia3-small', '1', '{"digest": "sha256:c24c25e8548038a36149b2e2a7e0192252379f7c2915e493e57f1e10c65c5f83", "previous_reason": null, "previous_status": "active", "reason": "superseded"}');


--
-- Data for Name: base_models; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: base_relations; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: blob_leases; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: evals; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.evals VALUES (1, 1, 'accuracy', 0.91, 'gsm8k', 'test', '', '2026-12-01 09:35:41+00', 'fixture@schema2');
INSERT INTO public.evals VALUES (2, 1, 'f1', 0.8, 'gsm8k', 'test', '', '2026-12-01 09:35:41+00', 'fixture@schema2');
INSERT INTO public.evals VALUES (3, 2, 'accuracy', 0.95, 'gsm8k', '', '', '2026-12-01 09:35:46+00', 'fixture@schema2');
INSERT INTO public.evals VALUES (4, 3, 'accuracy', 0.7, '', '', '', '2026-12-01 09:35:50+00', 'fixture@schema2');


--
-- Data for Name: hub_links; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: lineage_edges; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: schema_info; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.schema_info VALUES ('schema_version', '2');


--
-- Data for Name: signatures; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: tags; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.tags VALUES (1, 'team', 'nlp');
INSERT INTO public.tags VALUES (1, 'stage', 'dev');
INSERT INTO public.tags VALUES (2, 'team', 'nlp');


--
-- Data for Name: training_data; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.training_data VALUES (1, 1, '0000000000000000000000000000000000000000000000000000000000000001', 'given', 'sha256:0000000000000000000000000000000000000000000000000000000000000001', 0, 0);


--
-- Data for Name: version_files; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.version_files VALUES (1, 'README.md', '6451c2a103f75266af1d2e786889edfa76b10faabe29e903188e442f1fd4e038', 5174, 'card');
INSERT INTO public.version_files VALUES (1, 'adapter_config.json', 'fbd87ffe839108b162a948756c1cc3ac9a2fe2a1b79cb3d9e9a62e08ab835c1b', 1086, 'config');
INSERT INTO public.version_files VALUES (1, 'adapter_model.safetensors', '58ee4b1395eca418041ec2d687b93164cdfe77bf8dd395d2dea92aa24c89ea11', 4608, 'weights');
INSERT INTO public.version_files VALUES (2, 'README.md', '6451c2a103f75266af1d2e786889edfa76b10faabe29e903188e442f1fd4e038', 5174, 'card');
INSERT INTO public.version_files VALUES (2, 'adapter_config.json', 'fbd87ffe839108b162a948756c1cc3ac9a2fe2a1b79cb3d9e9a62e08ab835c1b', 1086, 'config');
INSERT INTO public.version_files VALUES (2, 'adapter_model.safetensors', '07809fab03643ba6e6d647ade2073e85c1de5617b4e0a6a90206b1404482b496', 4608, 'weights');
INSERT INTO public.version_files VALUES (3, 'README.md', '1e85c6319d73a6e4e06a7cf76ee117e1228f32c3ad0824f22a0c252cc20b62a3', 5167, 'card');
INSERT INTO public.version_files VALUES (3, 'adapter_config.json', 'd43e5813bbedcde07d894cde19c54544b5b50608c440f3234384aba46f177629', 421, 'config');
INSERT INTO public.version_files VALUES (3, 'adapter_model.safetensors', 'd311b6b44160c72de05c94a9b56ab3fa57cb111245c48055bb698b15639fb9b6', 1480, 'weights');


--
-- Name: adapter_versions_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.adapter_versions_id_seq', 3, true);


--
-- Name: alias_history_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.alias_history_id_seq', 2, true);


--
-- Name: audit_events_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.audit_events_id_seq', 4, true);


--
-- Name: base_models_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.base_models_id_seq', 1, false);


--
-- Name: blob_leases_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.blob_leases_id_seq', 9, true);


--
-- Name: evals_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.evals_id_seq', 4, true);


--
-- Name: hub_links_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.hub_links_id_seq', 1, false);


--
-- Name: lineage_edges_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.lineage_edges_id_seq', 1, false);


--
-- Name: signatures_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.signatures_id_seq', 1, false);


--
-- Name: training_data_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.training_data_id_seq', 1, true);


--
-- Name: adapter_versions adapter_versions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.adapter_versions
    ADD CONSTRAINT adapter_versions_pkey PRIMARY KEY (id);


--
-- Name: alias_history alias_history_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alias_history
    ADD CONSTRAINT alias_history_pkey PRIMARY KEY (id);


--
-- Name: aliases aliases_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.aliases
    ADD CONSTRAINT aliases_pkey PRIMARY KEY (name, alias);


--
-- Name: audit_events audit_events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_events
    ADD CONSTRAINT audit_events_pkey PRIMARY KEY (id);


--
-- Name: base_models base_models_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.base_models
    ADD CONSTRAINT base_models_pkey PRIMARY KEY (id);


--
-- Name: base_relations base_relations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.base_relations
    ADD CONSTRAINT base_relations_pkey PRIMARY KEY (from_id, to_id);


--
-- Name: blob_leases blob_leases_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.blob_leases
    ADD CONSTRAINT blob_leases_pkey PRIMARY KEY (id);


--
-- Name: evals evals_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.evals
    ADD CONSTRAINT evals_pkey PRIMARY KEY (id);


--
-- Name: hub_links hub_links_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.hub_links
    ADD CONSTRAINT hub_links_pkey PRIMARY KEY (id);


--
-- Name: lineage_edges lineage_edges_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.lineage_edges
    ADD CONSTRAINT lineage_edges_pkey PRIMARY KEY (id);


--
-- Name: schema_info schema_info_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_info
    ADD CONSTRAINT schema_info_pkey PRIMARY KEY (key);


--
-- Name: signatures signatures_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.signatures
    ADD CONSTRAINT signatures_pkey PRIMARY KEY (id);


--
-- Name: tags tags_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tags
    ADD CONSTRAINT tags_pkey PRIMARY KEY (version_id, key);


--
-- Name: training_data training_data_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.training_data
    ADD CONSTRAINT training_data_pkey PRIMARY KEY (id);


--
-- Name: adapter_versions uq_adapter_versions_name_digest; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.adapter_versions
    ADD CONSTRAINT uq_adapter_versions_name_digest UNIQUE (name, digest);


--
-- Name: adapter_versions uq_adapter_versions_name_version; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.adapter_versions
    ADD CONSTRAINT uq_adapter_versions_name_version UNIQUE (name, version);


--
-- Name: base_models uq_base_models_name_revision; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.base_models
    ADD CONSTRAINT uq_base_models_name_revision UNIQUE (name, revision);


--
-- Name: signatures uq_signatures_version_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.signatures
    ADD CONSTRAINT uq_signatures_version_key UNIQUE (version_id, key_id);


--
-- Name: version_files version_files_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.version_files
    ADD CONSTRAINT version_files_pkey PRIMARY KEY (version_id, path);


--
-- Name: ix_adapter_versions_base_fingerprint; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_adapter_versions_base_fingerprint ON public.adapter_versions USING btree (base_fingerprint);


--
-- Name: ix_adapter_versions_base_model_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_adapter_versions_base_model_id ON public.adapter_versions USING btree (base_model_id);


--
-- Name: ix_adapter_versions_base_name; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_adapter_versions_base_name ON public.adapter_versions USING btree (base_name);


--
-- Name: ix_adapter_versions_digest; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_adapter_versions_digest ON public.adapter_versions USING btree (digest);


--
-- Name: ix_adapter_versions_method; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_adapter_versions_method ON public.adapter_versions USING btree (method);


--
-- Name: ix_adapter_versions_name; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_adapter_versions_name ON public.adapter_versions USING btree (name);


--
-- Name: ix_adapter_versions_name_version_key; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_adapter_versions_name_version_key ON public.adapter_versions USING btree (name, version_key);


--
-- Name: ix_alias_history_name_alias_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_alias_history_name_alias_id ON public.alias_history USING btree (name, alias, id);


--
-- Name: ix_aliases_alias; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_aliases_alias ON public.aliases USING btree (alias);


--
-- Name: ix_aliases_version_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_aliases_version_id ON public.aliases USING btree (version_id);


--
-- Name: ix_audit_events_action; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_audit_events_action ON public.audit_events USING btree (action);


--
-- Name: ix_audit_events_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_audit_events_at ON public.audit_events USING btree (at);


--
-- Name: ix_audit_events_name; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_audit_events_name ON public.audit_events USING btree (name);


--
-- Name: ix_base_models_fingerprint; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_base_models_fingerprint ON public.base_models USING btree (fingerprint);


--
-- Name: ix_base_models_name; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_base_models_name ON public.base_models USING btree (name);


--
-- Name: ix_blob_leases_created_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_blob_leases_created_at ON public.blob_leases USING btree (created_at);


--
-- Name: ix_blob_leases_lease; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_blob_leases_lease ON public.blob_leases USING btree (lease);


--
-- Name: ix_blob_leases_sha256; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_blob_leases_sha256 ON public.blob_leases USING btree (sha256);


--
-- Name: ix_evals_metric; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_evals_metric ON public.evals USING btree (metric);


--
-- Name: ix_evals_version_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_evals_version_id ON public.evals USING btree (version_id);


--
-- Name: ix_evals_version_metric_dataset_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_evals_version_metric_dataset_id ON public.evals USING btree (version_id, metric, dataset, id, value);


--
-- Name: ix_evals_version_metric_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_evals_version_metric_id ON public.evals USING btree (version_id, metric, id, value);


--
-- Name: ix_hub_links_name_version; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_hub_links_name_version ON public.hub_links USING btree (name, version);


--
-- Name: ix_lineage_edges_child_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_lineage_edges_child_id ON public.lineage_edges USING btree (child_id);


--
-- Name: ix_lineage_edges_parent_digest; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_lineage_edges_parent_digest ON public.lineage_edges USING btree (parent_digest);


--
-- Name: ix_signatures_key_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_signatures_key_id ON public.signatures USING btree (key_id);


--
-- Name: ix_signatures_version_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_signatures_version_id ON public.signatures USING btree (version_id);


--
-- Name: ix_tags_key; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_tags_key ON public.tags USING btree (key);


--
-- Name: ix_training_data_sha256; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_training_data_sha256 ON public.training_data USING btree (sha256);


--
-- Name: ix_training_data_version_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_training_data_version_id ON public.training_data USING btree (version_id);


--
-- Name: ix_version_files_sha256; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_version_files_sha256 ON public.version_files USING btree (sha256);


--
-- Name: alias_history alias_history_no_change; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER alias_history_no_change BEFORE DELETE OR UPDATE ON public.alias_history FOR EACH ROW EXECUTE FUNCTION public.adapters_append_only();


--
-- Name: alias_history alias_history_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER alias_history_no_truncate BEFORE TRUNCATE ON public.alias_history FOR EACH STATEMENT EXECUTE FUNCTION public.adapters_append_only();


--
-- Name: audit_events audit_events_no_change; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_events_no_change BEFORE DELETE OR UPDATE ON public.audit_events FOR EACH ROW EXECUTE FUNCTION public.adapters_append_only();


--
-- Name: audit_events audit_events_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON public.audit_events FOR EACH STATEMENT EXECUTE FUNCTION public.adapters_append_only();


--
-- Name: adapter_versions adapter_versions_base_model_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.adapter_versions
    ADD CONSTRAINT adapter_versions_base_model_id_fkey FOREIGN KEY (base_model_id) REFERENCES public.base_models(id);


--
-- Name: aliases aliases_version_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.aliases
    ADD CONSTRAINT aliases_version_id_fkey FOREIGN KEY (version_id) REFERENCES public.adapter_versions(id);


--
-- Name: base_relations base_relations_from_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.base_relations
    ADD CONSTRAINT base_relations_from_id_fkey FOREIGN KEY (from_id) REFERENCES public.base_models(id);


--
-- Name: base_relations base_relations_to_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.base_relations
    ADD CONSTRAINT base_relations_to_id_fkey FOREIGN KEY (to_id) REFERENCES public.base_models(id);


--
-- Name: evals evals_version_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.evals
    ADD CONSTRAINT evals_version_id_fkey FOREIGN KEY (version_id) REFERENCES public.adapter_versions(id);


--
-- Name: lineage_edges lineage_edges_child_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.lineage_edges
    ADD CONSTRAINT lineage_edges_child_id_fkey FOREIGN KEY (child_id) REFERENCES public.adapter_versions(id);


--
-- Name: signatures signatures_version_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.signatures
    ADD CONSTRAINT signatures_version_id_fkey FOREIGN KEY (version_id) REFERENCES public.adapter_versions(id) ON DELETE CASCADE;


--
-- Name: tags tags_version_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tags
    ADD CONSTRAINT tags_version_id_fkey FOREIGN KEY (version_id) REFERENCES public.adapter_versions(id);


--
-- Name: training_data training_data_version_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.training_data
    ADD CONSTRAINT training_data_version_id_fkey FOREIGN KEY (version_id) REFERENCES public.adapter_versions(id);


--
-- Name: version_files version_files_version_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.version_files
    ADD CONSTRAINT version_files_version_id_fkey FOREIGN KEY (version_id) REFERENCES public.adapter_versions(id);


--
-- PostgreSQL database dump complete
--

\unrestrict GrVzddPtJ4t9kzXAKYH8ZlC0WoUEwTXbe8S1SMlN87yaHd4Wbe8RWPb9cb0Hnbh

