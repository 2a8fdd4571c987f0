{#-
    The column holds only the configured sales channels (var `channels` / ECOM_CHANNELS, see
    macros/data_shape.sql). Without a configured list the channels are whatever the data holds, and
    there is nothing to check against: the test passes (landing already rejects blank channels).
-#}
{% test accepted_channels(model, column_name) %}
{%- set channels = configured_channels() %}

select {{ column_name }}
from {{ model }}
{%- if channels %}
where {{ column_name }} is not null
    and {{ column_name }} not in ({% for c in channels %}'{{ c | replace("'", "''") }}'{{ ', ' if not loop.last }}{% endfor %})
{%- else %}
where 1 = 0
{%- endif %}

{% endtest %}
