// The Tierline record card (UI extension) on tickets and companies. It asks Tierline's backend for the card data
// through hubspot.fetch(), which signs the request (v3) and adds the portal and user, so the backend knows it is
// HubSpot asking. Replace https://tierline.example.com with your PUBLIC_URL everywhere in this project.
import React, { useCallback, useEffect, useState } from 'react';
import {
  hubspot,
  Alert,
  Button,
  DescriptionList,
  DescriptionListItem,
  Divider,
  EmptyState,
  Flex,
  Heading,
  Link,
  LoadingSpinner,
  StatusTag,
  Table,
  TableBody,
  TableCell,
  TableHead,
  TableHeader,
  TableRow,
  Text,
} from '@hubspot/ui-extensions';

const TIERLINE_URL = 'https://tierline.example.com';

hubspot.extend(({ context }) => <RoutingCard context={context} />);

const SLA_VARIANT = { met: 'success', running: 'info', missed: 'danger', breached: 'danger', none: 'default' };
const KIND_LABEL = {
  routed: 'Routed',
  assigned: 'Assigned',
  first_reply: 'First reply',
  reply_by_other: 'Reply by another agent',
  reassigned: 'Reassigned',
  overflow: 'Overflowed',
  sla_warning: 'SLA warning',
  sla_breached: 'SLA breached',
  escalated: 'Escalated',
  resolved: 'Resolved',
  reopened: 'Reopened',
  topic_recreated: 'Topic recreated',
};

const when = (iso) => (iso ? new Date(iso).toLocaleString() : '–');

function RoutingCard({ context }) {
  const objectType = context.crm.objectTypeId === '0-2' ? 'company' : 'ticket';
  const objectId = context.crm.objectId;
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [loading, setLoading] = useState(true);

  const load = useCallback(async () => {
    setLoading(true);
    setError(null);
    try {
      const res = await hubspot.fetch(`${TIERLINE_URL}/hubspot/card?objectType=${objectType}&objectId=${objectId}`, { timeout: 10000 });
      const body = await res.json();
      if (!res.ok) throw new Error(body?.error?.message ?? `Tierline answered ${res.status}`);
      setData(body);
    } catch (e) {
      setError(e.message || String(e));
    } finally {
      setLoading(false);
    }
  }, [objectType, objectId]);

  useEffect(() => {
    load();
  }, [load]);

  if (loading) return <LoadingSpinner label="Loading the routing from Tierline" />;
  if (error)
    return (
      <Alert title="Tierline could not be reached" variant="error">
        {error} <Button onClick={load}>Try again</Button>
      </Alert>
    );
  if (data.empty) return <EmptyState title="Not routed yet" layout="vertical">{data.empty}</EmptyState>;

  return (
    <Flex direction="column" gap="medium">
      {data.tickets.slice(0, objectType === 'ticket' ? 1 : 10).map((t) => (
        <Flex key={t.ticketId} direction="column" gap="small">
          {objectType === 'company' && <Heading>{t.subject}</Heading>}
          <DescriptionList direction="row">
            <DescriptionListItem label="Queue">{t.queue ?? '–'}</DescriptionListItem>
            <DescriptionListItem label="Agent">{t.agent ?? 'Waiting for an agent'}</DescriptionListItem>
            <DescriptionListItem label="Tier">{t.tier ?? 'unknown'}</DescriptionListItem>
            <DescriptionListItem label="SLA">
              <StatusTag variant={SLA_VARIANT[t.sla.state] ?? 'default'}>{t.sla.label}</StatusTag>
            </DescriptionListItem>
          </DescriptionList>
          {t.reason && <Text variant="microcopy">{t.reason}</Text>}
          {t.topicLink && <Link href={t.topicLink}>Open the Telegram topic</Link>}
        </Flex>
      ))}
      <Divider />
      <Heading>Routing history</Heading>
      <Table bordered={true}>
        <TableHead>
          <TableRow>
            <TableHeader>When</TableHeader>
            <TableHeader>Event</TableHeader>
            <TableHeader>Why</TableHeader>
          </TableRow>
        </TableHead>
        <TableBody>
          {data.history.map((e, i) => (
            <TableRow key={`${e.ticketId}-${e.at}-${i}`}>
              <TableCell>{when(e.at)}</TableCell>
              <TableCell>
                {KIND_LABEL[e.kind] ?? e.kind}
                {objectType === 'company' ? ` (ticket ${e.ticketId})` : ''}
              </TableCell>
              <TableCell>
                <Text>{e.text}</Text>
                {e.explanation.map((line, j) => (
                  <Text key={j} variant="microcopy">
                    {line}
                  </Text>
                ))}
              </TableCell>
            </TableRow>
          ))}
        </TableBody>
      </Table>
    </Flex>
  );
}
